"""Live traffic for the demo: writes realistic events to the database and publishes them.

Publishing goes through the plugin's feed, so it reaches NATS when OMNI_NATS_URL is set
and the in-process bus otherwise; either way the dashboard's live feed is alive.
"""

import logging
import random
import threading
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from .tables import instances, omni_events

log = logging.getLogger(__name__)
KINDS = (("message.received", "inbound", 0.55), ("message.sent", "outbound", 0.4))


class TrafficSimulator:
    """A daemon thread producing about ``rate`` events per second until stopped."""

    def __init__(self, engine, feed, clock, rate: float = 2.0, seed: int | None = None):
        self.engine = engine
        self.feed = feed
        self.clock = clock
        self.rate = rate
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="omni-simulator", daemon=True)

    def start(self) -> "TrafficSimulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.expovariate(self.rate)):
            try:
                self.step()
            except Exception:  # a bad moment (database restarting) must not end the demo
                log.exception("simulated event failed")
                time.sleep(1)

    def step(self) -> None:
        """Write and publish one event (now and then an instance connecting or leaving)."""
        with self.engine.begin() as conn:
            known = conn.execute(select(instances.c.id, instances.c.channel)).all()
            if not known:
                return
            instance_id, channel = self.rng.choice(known)
            now = self.clock()
            if self.rng.random() < 0.03:
                connected = self.rng.random() < 0.6
                conn.execute(
                    update(instances)
                    .where(instances.c.id == instance_id)
                    .values(is_active=connected, updated_at=now)
                )
                event_type = "instance.connected" if connected else "instance.disconnected"
                payload = {"instanceId": str(instance_id), "channelType": channel}
            else:
                roll = self.rng.random()
                event_type, direction = "message.failed", "outbound"
                for kind, kind_direction, share in KINDS:
                    if roll < share:
                        event_type, direction = kind, kind_direction
                        break
                    roll -= share
                failed = event_type == "message.failed"
                conn.execute(
                    omni_events.insert().values(
                        id=uuid.uuid4(),
                        channel=channel,
                        instance_id=instance_id,
                        event_type=event_type,
                        direction=direction,
                        content_type="text",
                        status="failed" if failed else "completed",
                        error_stage="channel_send" if failed else None,
                        processing_time_ms=self.rng.randrange(40, 900),
                        received_at=now,
                        created_at=now,
                    )
                )
                payload = {"externalId": f"sim-{uuid.uuid4().hex[:8]}", "content": {"type": "text"}}
        self.feed.publish(
            f"{event_type}.{channel}.{instance_id}",
            {
                "id": str(uuid.uuid4()),
                "type": event_type,
                "payload": payload,
                "timestamp": int(datetime.now(UTC).timestamp() * 1000),
                "metadata": {
                    "correlationId": str(uuid.uuid4()),
                    "instanceId": str(instance_id),
                    "channelType": channel,
                    "source": "omni-host simulator",
                },
            },
        )
