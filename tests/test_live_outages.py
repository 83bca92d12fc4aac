"""NATS killed and restarted under a live stream, in both feed modes: nothing is lost in
silence (every published event is delivered, or a ``reset`` covers it), and delivery comes
back with NATS (how soon: bench/failover.py)."""

import asyncio
import json
import threading

import nats
import pytest

from .conftest import API_KEY, build_app
from .live_support import Served, add_streams, omni_message, publish, subject_of
from .waiting import deadline_in, expired, remaining, wait_until

pytestmark = pytest.mark.slow  # nats-server, stopped and restarted


class Publisher:
    """Publishes numbered events every ``interval`` seconds, each on a fresh connection: an
    event counts as published only when NATS took it (flushed; with ``stored``, when the
    JetStream stream acknowledged it, as a core-NATS flush does not wait for the stream to
    store the event and a killed server may not have)."""

    def __init__(self, url: str, stored: bool, interval: float = 0.05):
        self.url = url
        self.stored = stored
        self.interval = interval
        self.published: list[int] = []
        self.tried = 0  # events tried: those unacknowledged may have been stored all the same
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Publisher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            message = omni_message("message.received", n=n)
            if asyncio.run(self._publish(message)):
                self.published.append(n)
            n += 1
            self.tried = n
            self._stop.wait(self.interval)

    async def _publish(self, message) -> bool:
        try:
            client = await nats.connect(self.url, connect_timeout=0.5, allow_reconnect=False)
        except Exception:  # NATS is down: not published
            return False
        try:
            if self.stored:
                js = client.jetstream(timeout=1)
                await js.publish(subject_of(message), json.dumps(message).encode())
            else:
                await client.publish(subject_of(message), json.dumps(message).encode())
                await client.flush(timeout=1)
            return True
        except Exception:
            return False
        finally:
            await client.close()


def number(event) -> int:
    return int(event["data"]["id"].rsplit("-", 1)[1])


MARKER = 1_000_000  # the number of the event that ends a collection


def collect(reader, url: str) -> list[dict]:
    """Every event the reader gets, in order, up to a marker event published now with the
    bridge connected (delivered live, after everything before it), which is left out."""
    publish(url, [omni_message("message.received", n=MARKER)])
    events = []
    deadline = deadline_in()
    while True:
        assert not expired(deadline), f"the marker never came; the last: {events[-3:]}"
        event = reader.next(timeout=remaining(deadline))
        assert not event.get("closed"), f"the stream closed after {events[-3:]}"
        if event.get("event") == "event.received" and number(event) == MARKER:
            return events
        events.append(event)


def outage(nats_server, hub, publisher: "Publisher", after: int) -> None:
    """Stop NATS until the bridge notices, start it again until the bridge is back, and
    wait for ``after`` more events published."""
    nats_server.stop()
    wait_until(lambda: hub.nats_connected is False, "the bridge to notice NATS gone")
    nats_server.start()
    wait_until(lambda: hub.nats_connected, "the bridge to reconnect")
    count = len(publisher.published)
    wait_until(lambda: len(publisher.published) >= count + after, "events after the restart")


def silent_losses(events: list[dict], published: list[int]) -> list[int]:
    """Published events neither delivered nor covered by a ``reset`` sent after the last
    delivered event before them and before the first delivered event after them."""
    positions = {number(e): i for i, e in enumerate(events) if e["event"] == "event.received"}
    resets = [i for i, e in enumerate(events) if e["event"] == "reset"]
    lost = []
    for n in published:
        if n in positions:
            continue
        before = max((i for m, i in positions.items() if m < n), default=-1)
        after = min((i for m, i in positions.items() if m > n), default=len(events))
        if not any(before < i < after for i in resets):
            lost.append(n)
    return lost


@pytest.fixture(params=["buffer", "jetstream"])
def mode(request):
    return request.param


@pytest.fixture
def feed(nats_server, tmp_path, mode):
    """The host served over HTTP with its live feed on ``nats_server`` in ``mode``."""
    if mode == "jetstream":
        add_streams(nats_server.url)
    app = build_app(
        f"sqlite:///{tmp_path / 'outage.db'}",
        OMNI_NATS_URL=nats_server.url,
        OMNI_DASHBOARD_STREAM_HEARTBEAT=1,
    )
    served = Served(app)
    yield served
    app.extensions["omni_dashboard"].live.stop()
    served.close()


def test_nats_restart_mid_stream_loses_nothing_in_silence(nats_server, feed, mode):
    hub = feed.app.extensions["omni_dashboard"].live.hub()
    status, reader, conn = feed.stream("/api/v2/events/stream", key=API_KEY)
    assert status == 200 and reader.next()["data"]["mode"] == mode
    publisher = Publisher(nats_server.url, stored=mode == "jetstream").start()
    wait_until(lambda: len(publisher.published) >= 10, "events published before the outage")
    before = len(publisher.published)
    outage(nats_server, hub, publisher, after=10)
    publisher.stop()
    events = collect(reader, nats_server.url)
    conn.close()

    published = publisher.published
    after_restart = published[before:]
    delivered = [e for e in events if e["event"] == "event.received"]
    numbers = [number(e) for e in delivered]
    assert numbers == sorted(set(numbers)), "in order, without duplicates"
    assert silent_losses(events, published) == []
    assert set(after_restart) & set(numbers), "delivery came back after the restart"
    if mode == "jetstream":  # the stream kept what the bridge missed: nothing to reset
        assert set(published) <= set(numbers)
        assert not [e for e in events if e["event"] == "reset"]
    else:  # core NATS: what came while the bridge was away is announced
        assert [e for e in events if e["event"] == "reset"]


def test_resuming_across_an_outage(nats_server, feed, mode):
    """A client that resumes from before the outage gets what it missed, or ``reset``."""
    hub = feed.app.extensions["omni_dashboard"].live.hub()
    status, reader, conn = feed.stream("/api/v2/events/stream", key=API_KEY)
    assert status == 200
    publisher = Publisher(nats_server.url, stored=mode == "jetstream").start()
    first = reader.take(3, name="event.received")
    conn.close()
    outage(nats_server, hub, publisher, after=5)
    publisher.stop()
    status, again, conn2 = feed.stream(
        "/api/v2/events/stream", key=API_KEY, headers={"Last-Event-ID": first[-1]["id"]}
    )
    assert status == 200 and again.next()["event"] == "connected"
    events = collect(again, nats_server.url)
    conn2.close()
    later = [n for n in publisher.published if n > number(first[-1])]
    assert silent_losses(events, later) == []
    if mode == "jetstream":
        delivered = [number(e) for e in events if e["event"] == "event.received"]
        tried = range(number(first[-1]) + 1, publisher.tried)
        assert delivered == sorted(set(delivered)) and set(later) <= set(delivered) <= set(tried)
    else:
        assert events[0]["event"] == "reset"


STOP_CLEANLY = """
import gc, sys
from host_example import create_app
app = create_app({"OMNI_DATABASE_URL": sys.argv[1], "OMNI_API_KEY": "k",
                  "OMNI_NATS_URL": sys.argv[2]})
live = app.extensions["omni_dashboard"].live
assert live.hub().mode == "jetstream", live.hub().mode
live.stop()
gc.collect()
print("stopped")
"""


def test_the_bridge_stops_without_leaving_its_event_loop_behind(nats_server, tmp_path):
    """Stopping closes the bridge's loop with nothing pending: no 'Task was destroyed' or
    'Event loop is closed' at exit (the warnings every test run used to print)."""
    import subprocess
    import sys

    add_streams(nats_server.url)
    database = f"sqlite:///{tmp_path / 's.db'}"
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", STOP_CLEANLY, database, nats_server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr
    for complaint in ("Task was destroyed", "Event loop is closed", "was never awaited"):
        assert complaint not in done.stderr, done.stderr
