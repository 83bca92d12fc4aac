"""Realistic, deterministic Omni traffic for the demo, the tests and the benchmarks."""

import random
import uuid
from bisect import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from .bulk import bulk_insert, indexes_deferred
from .tables import (
    CHANNELS,
    CONTENT_TYPES,
    automation_logs,
    automations,
    dead_letter_events,
    event_payloads,
    instances,
    metadata,
    omni_events,
)

ERROR_STAGES = ("agent", "channel_send", "media_download", "rate_limit", "validation")
OTHER_EVENT_TYPES = (
    "media.received",
    "media.processed",
    "identity.created",
    "identity.linked",
    "access.allowed",
    "access.denied",
    "instance.connected",
    "instance.disconnected",
)
ACTIONS = ("send_message", "call_agent", "webhook", "add_tag", "log")
CONTENT_WEIGHTS = (60, 8, 12, 4, 5, 4, 2, 2, 3)
# Relative traffic per UTC hour: quiet nights, busy afternoons.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 10, 10, 9, 10, 10, 9, 8, 8, 7, 6, 5, 4, 3, 2)

EVENT_COLUMNS = (
    "id",
    "external_id",
    "channel",
    "instance_id",
    "person_id",
    "event_type",
    "direction",
    "content_type",
    "text_content",
    "chat_id",
    "status",
    "error_message",
    "error_stage",
    "received_at",
    "processed_at",
    "processing_time_ms",
    "agent_latency_ms",
    "total_latency_ms",
    "created_at",
)
LOG_COLUMNS = (
    "id",
    "automation_id",
    "event_id",
    "status",
    "conditions_matched",
    "actions_executed",
    "error",
    "execution_time_ms",
    "created_at",
)
DEAD_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "subject",
    "payload",
    "error",
    "auto_retry_count",
    "manual_retry_count",
    "status",
    "created_at",
    "resolved_at",
)
PAYLOAD_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "stage",
    "payload_size_original",
    "payload_size_compressed",
    "timestamp",
    "deleted_at",
)


INBOUND_STATUSES = ("completed", "received", "processing", "failed")


def _cumulative(weights) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


@dataclass(frozen=True)
class SeedPlan:
    """How much to seed: events over the last ``days`` days ending at ``now``."""

    events: int = 10_000
    days: int = 7
    seed: int = 42
    now: datetime | None = None
    instances: int = 10
    automations: int = 6

    def counts(self) -> dict[str, int]:
        """Rows per table: logs, dead letters and payloads scale with the events."""
        return {
            "instances": self.instances,
            "automations": self.automations,
            "omni_events": self.events,
            "automation_logs": max(self.events // 10, 1),
            "dead_letter_events": max(self.events // 200, 4),
            "event_payloads": max(self.events // 5, 1),
        }


class Generator:
    """Generates the rows of every table from one seeded random source."""

    def __init__(self, plan: SeedPlan, now: datetime):
        self.plan = plan
        self.now = now
        self.rng = random.Random(plan.seed)
        self.instance_rows = [self._instance(i) for i in range(plan.instances)]
        self.automation_ids = [self.uuid() for _ in range(plan.automations)]
        self._hour_cum = _cumulative(HOUR_WEIGHTS)
        self._content_cum = _cumulative(CONTENT_WEIGHTS)
        self._status_cum = _cumulative((85, 6, 4, 5))
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self._days = [midnight - timedelta(days=d) for d in range(plan.days)]

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128))

    def _instance(self, i: int) -> tuple:
        channel = CHANNELS[i % len(CHANNELS)]
        return (
            self.uuid(),
            f"{channel}-{i // len(CHANNELS) + 1}",
            channel,
            self.rng.random() < 0.7,
        )

    def moment(self) -> datetime:
        """A random instant in the plan's window, following a daily traffic curve."""
        rng = self.rng
        hour = bisect(self._hour_cum, rng.random() * self._hour_cum[-1])
        offset_ms = hour * 3_600_000 + int(rng.random() * 3_600_000)
        at = self._days[int(rng.random() * len(self._days))] + timedelta(milliseconds=offset_ms)
        if at > self.now:
            at -= timedelta(days=1)
        return at

    def events(self):
        rng = self.rng
        for n in range(self.plan.events):
            instance = self.instance_rows[n] if n < len(self.instance_rows) else None
            instance_id, _, channel, _ = instance or rng.choice(self.instance_rows)
            at = self.moment()
            roll = rng.random()
            error_stage = error_message = None
            processing = agent = None
            content = CONTENT_TYPES[bisect(self._content_cum, rng.random() * self._content_cum[-1])]
            if roll < 0.5:
                event_type, direction = "message.received", "inbound"
                status = INBOUND_STATUSES[bisect(self._status_cum, rng.random() * 100)]
            elif roll < 0.85:
                event_type, direction, status = "message.sent", "outbound", "completed"
            elif roll < 0.9:
                event_type, direction, status = "message.failed", "outbound", "failed"
            else:
                event_type = rng.choice(OTHER_EVENT_TYPES)
                direction, status, content = "inbound", "completed", None
            if status == "failed":
                error_stage = rng.choice(ERROR_STAGES)
                error_message = f"{error_stage} error"
            if status in ("completed", "failed"):
                processing = int(rng.lognormvariate(5.5, 0.8))
                if direction == "inbound" and rng.random() < 0.8:
                    agent = int(rng.lognormvariate(6.8, 0.6))
            yield (
                self.uuid(),
                f"ext-{n}",
                channel,
                instance_id,
                self.uuid() if rng.random() < 0.9 else None,
                event_type,
                direction,
                content,
                "hello" if content == "text" else None,
                f"chat-{rng.randrange(500)}",
                status,
                error_message,
                error_stage,
                at,
                at + timedelta(milliseconds=processing) if processing is not None else None,
                processing,
                agent,
                (processing or 0) + (agent or 0) if processing is not None else None,
                at,
            )

    def automation_logs(self, count: int):
        rng = self.rng
        for _ in range(count):
            status = rng.choices(("success", "failed", "skipped"), (70, 10, 20))[0]
            actions = None
            if status != "skipped" and rng.random() < 0.95:
                actions = [
                    {
                        "action": rng.choice(ACTIONS),
                        "status": "failed" if status == "failed" and i == 0 else "success",
                        "durationMs": rng.randrange(1, 900),
                    }
                    for i in range(rng.randrange(0, 4))
                ]
            elif status == "skipped":
                actions = []
            yield (
                self.uuid(),
                rng.choice(self.automation_ids),
                str(self.uuid()),
                status,
                status != "skipped",
                actions,
                "action failed" if status == "failed" else None,
                rng.randrange(1, 2_000) if status != "skipped" else rng.randrange(0, 5),
                self.moment(),
            )

    def dead_letters(self, count: int):
        rng = self.rng
        statuses = ("pending", "retrying", "resolved", "abandoned")
        for n in range(count):
            # The first ones cover every status, so that even a small seed shows them all.
            status = statuses[n] if n < len(statuses) else rng.choices(statuses, (4, 2, 5, 2))[0]
            at = self.moment()
            event_type = rng.choice(("message.received", "message.sent", "media.processed"))
            yield (
                self.uuid(),
                str(self.uuid()),
                event_type,
                f"{event_type}.whatsapp-baileys",
                {"reason": "handler failed"},
                "handler failed",
                rng.randrange(0, 4),
                rng.randrange(0, 2),
                status,
                at,
                at + timedelta(minutes=5) if status == "resolved" else None,
            )

    def payloads(self, count: int):
        rng = self.rng
        stages = ("webhook_raw", "agent_request", "agent_response", "channel_send", "error")
        for _ in range(count):
            size = rng.randrange(200, 20_000)
            at = self.moment()
            yield (
                self.uuid(),
                str(self.uuid()),
                "message.received",
                rng.choice(stages),
                size,
                size // 3,
                at,
                at + timedelta(days=1) if rng.random() < 0.1 else None,
            )


def clear(connection) -> None:
    """Delete every row of Omni's tables (children first)."""
    for table in reversed(metadata.sorted_tables):
        connection.execute(delete(table))


def seed(engine, plan: SeedPlan) -> dict:
    """Replace the database's rows with generated traffic; returns the row counts."""
    now = plan.now or datetime.utcnow().replace(microsecond=0)
    gen = Generator(plan, now)
    counts = plan.counts()
    with engine.begin() as conn:
        clear(conn)
        conn.execute(
            instances.insert(),
            [
                {"id": i, "name": name, "channel": ch, "is_active": active}
                for i, name, ch, active in gen.instance_rows
            ],
        )
        conn.execute(
            automations.insert(),
            [{"id": a, "name": f"automation-{n}"} for n, a in enumerate(gen.automation_ids)],
        )
        with indexes_deferred(conn, omni_events):
            bulk_insert(conn, omni_events, EVENT_COLUMNS, gen.events())
        bulk_insert(
            conn, automation_logs, LOG_COLUMNS, gen.automation_logs(counts["automation_logs"])
        )
        bulk_insert(
            conn, dead_letter_events, DEAD_COLUMNS, gen.dead_letters(counts["dead_letter_events"])
        )
        bulk_insert(conn, event_payloads, PAYLOAD_COLUMNS, gen.payloads(counts["event_payloads"]))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in metadata.sorted_tables:
                conn.exec_driver_sql(f"ANALYZE {table.name}")
    return counts
