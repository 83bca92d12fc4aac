"""The live feed when the NATS node it is connected to dies: kill -9 to the next event.

    python -m bench.failover --trials 3 --write

(with the ``test`` extra installed: it runs the tests' nats-server and cluster helpers)

Each trial starts a three-node NATS cluster (routes, JetStream; tests/cluster_support.py),
one example-host process (werkzeug, in this process) whose bridge connects to one node and
creates the plugin's stream at three replicas, and one SSE client; a publisher stores an
event through JetStream every 10 ms (retrying each until it is acknowledged). Then the
app's node is killed (SIGKILL). Measured from the kill: when JetStream stored the first
event sent after it, when the client got that event, and whether every stored event
reached the client once, in order. Trials differ by what the killed node held besides the
app's connection: no JetStream leadership, the leadership of the plugin's stream, or
JetStream's meta leadership (which creating consumers needs); nats-server elects a new
leader 4 to 9 s after it lost one.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from host_example import create_app
from omni_dashboard_plugin.live.bridge import FEED_STREAM
from tests.cluster_support import NatsCluster, StoredPublisher
from tests.live_support import Served

from .report import publish

KEY = "bench"
ROLES = {
    "none": "no JetStream leadership",
    "stream": "the stream's leadership",
    "meta": "JetStream's meta leadership",
}


def number(event) -> int:
    return int(event["data"]["id"].rsplit("-", 1)[1])


def placement(cluster: NatsCluster, role: str) -> tuple[int, str]:
    """The node to kill and the node to lead the stream, for ``role``."""
    meta = cluster.meta_leader()
    others = [cluster.name(i) for i in range(len(cluster.urls)) if cluster.name(i) != meta]
    victim = {"meta": meta, "stream": others[0], "none": others[0]}[role]
    leader = {"meta": others[0], "stream": others[0], "none": others[1]}[role]
    return cluster.index_of(victim), leader


def read_until(reader, last: int, timeout: float = 60.0) -> list[dict]:
    """The client's events up to event number ``last``."""
    events, deadline = [], time.monotonic() + timeout
    while not events or events[-1].get("event") != "event.received" or number(events[-1]) < last:
        event = reader.next(timeout=max(0.05, deadline - time.monotonic()))
        if event.get("closed"):
            raise RuntimeError(f"the stream closed after {events[-3:]}")
        events.append(event)
    return events


def trial(role: str, store: Path) -> dict:
    """One kill of the app's node holding ``role``: seconds to stored, to delivered."""
    cluster = NatsCluster(store).start()
    try:
        victim, stream_leader = placement(cluster, role)
        app = create_app(
            {
                "OMNI_DATABASE_URL": f"sqlite:///{store / 'bench.db'}",
                "OMNI_API_KEY": KEY,
                "OMNI_NATS_URL": cluster.urls[victim],  # the others are discovered
                "OMNI_DASHBOARD_STREAM_JETSTREAM": "create",
                "OMNI_DASHBOARD_STREAM_REPLICAS": 3,
            }
        )
        served = Served(app)
        try:
            live = app.extensions["omni_dashboard"].live
            while live.hub().mode != "jetstream":  # the stream is being created
                time.sleep(0.05)
            status, reader, connection = served.stream("/api/v2/events/stream", key=KEY)
            assert status == 200 and reader.next()["data"]["mode"] == "jetstream"
            cluster.wait_for_replicas(FEED_STREAM, 3)
            cluster.move_stream_leader(FEED_STREAM, stream_leader)
            if (cluster.meta_leader() == cluster.name(victim)) != (role == "meta"):
                raise RuntimeError("JetStream's meta leader moved before the kill")
            publisher = StoredPublisher(cluster.urls, interval=0.01).start()
            events = read_until(reader, 50)
            killed = time.monotonic()
            cluster.kill(victim)
            while len([at for _, at in publisher.stored if at > killed]) < 100:
                time.sleep(0.05)
            publisher.stop()
            stored = publisher.numbers()
            events += read_until(reader, stored[-1])
            connection.close()
        finally:
            app.extensions["omni_dashboard"].live.stop()
            served.close()
    finally:
        cluster.stop()
    # The first event sent after the kill: when JetStream took it, when the client got it.
    first = next(n for n, at in sorted(publisher.sent.items()) if at > killed)
    stored_at = dict(publisher.stored)[first]
    delivered = [number(e) for e in events if e.get("event") == "event.received"]
    arrived = next(
        e["at"] for e in events if e.get("event") == "event.received" and number(e) == first
    )
    return {
        "stored": stored_at - killed,
        "delivered": arrived - killed,
        "lost": len(set(stored) - set(delivered)),
        "repeated": len(delivered) - len(set(delivered)),
        "in_order": delivered == sorted(delivered),
    }


def span(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="kills per role")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    lines = [
        f"{args.trials} kills per row, each on a fresh three-node cluster; events stored at "
        "100/s; seconds from the kill, median (min-max).",
        "",
        "| the killed node held, besides the app's connection | JetStream stored again "
        "| the client got that event | lost | repeated | in order |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for role, held in ROLES.items():
        results = []
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="omni-failover-") as store:
                results.append(trial(role, Path(store)))
        lines.append(
            f"| {held} | {span([r['stored'] for r in results])} "
            f"| {span([r['delivered'] for r in results])} "
            f"| {sum(r['lost'] for r in results)} | {sum(r['repeated'] for r in results)} "
            f"| {'yes' if all(r['in_order'] for r in results) else 'no'} |"
        )
    publish("failover", lines, args.write)


if __name__ == "__main__":
    main()
