"""The live feed on a real three-node NATS cluster (routes, JetStream, the plugin's stream
at three replicas): the node the app is connected to is killed (SIGKILL) while events flow,
and the feed goes on from another node with every stored event delivered once, in order;
an id from before the loss resumes from what the cluster kept.

How long the feed pauses is measured by ``python -m bench.failover`` (docs/deployment.md),
not asserted here: this test waits for conditions, with ceilings that only catch hangs.
"""

import queue

import pytest
import requests
from nats.js.api import StreamConfig

from omni_dashboard_plugin.config import ConfigError, StreamSettings
from omni_dashboard_plugin.live.bridge import FEED_STREAM

from .cluster_support import NatsCluster, StoredPublisher, jetstream_call
from .conftest import API_KEY, build_app
from .live_support import Served
from .waiting import deadline_in, remaining, wait_until

pytestmark = pytest.mark.slow  # a NATS cluster

STREAM = "/api/v2/events/stream"


def number(event) -> int:
    return int(event["data"]["id"].rsplit("-", 1)[1])


def read_through(reader, last: int) -> list[dict]:
    """The reader's events up to the one of event number ``last``."""
    events = []
    deadline = deadline_in()
    while not events or events[-1].get("event") != "event.received" or number(events[-1]) < last:
        try:
            event = reader.next(timeout=remaining(deadline))
        except queue.Empty:
            raise AssertionError(f"event {last} not delivered; the last: {events[-3:]}") from None
        assert not event.get("closed"), f"the stream closed after {events[-3:]}"
        events.append(event)
    return events


def delivered(events: list[dict]) -> list[int]:
    return [number(e) for e in events if e.get("event") == "event.received"]


def feed_stream(urls: list[str], replicas: int) -> None:
    """The plugin's stream as a one-server deployment left it (one replica)."""

    config = StreamConfig(
        name=FEED_STREAM, subjects=["message.>", "instance.>"], num_replicas=replicas
    )
    # asked again while a cluster just formed leaves it unanswered (an add of the same
    # config is answered with the stream)
    jetstream_call(urls, lambda js: js.add_stream(config), f"{FEED_STREAM} created")


def nats_health(served: Served) -> str:
    """The NATS check of /health (a cluster is up while one of its servers answers)."""
    body = requests.get(f"http://127.0.0.1:{served.port}/api/v2/health", timeout=10).json()
    return body["checks"]["nats"]["status"]


@pytest.fixture
def cluster(tmp_path):
    nodes = NatsCluster(tmp_path / "cluster").start()
    yield nodes
    nodes.stop()


def serve(tmp_path, name: str, nats_url: str) -> Served:
    app = build_app(
        f"sqlite:///{tmp_path / f'{name}.db'}",
        OMNI_NATS_URL=nats_url,
        OMNI_DASHBOARD_STREAM_JETSTREAM="create",
        OMNI_DASHBOARD_STREAM_REPLICAS=3,
        OMNI_DASHBOARD_STREAM_HEARTBEAT=1,
        OMNI_HEALTH_NATS_TTL=0.2,
    )
    served = Served(app)
    served.app = app
    live = app.extensions["omni_dashboard"].live
    wait_until(lambda: live.hub().mode == "jetstream", "the bridge to find its stream")
    return served


def connected_node(served: Served, cluster: NatsCluster) -> int:
    bridge = served.app.extensions["omni_dashboard"].live._bridge
    return cluster.client_ports.index(bridge.client.connected_url.port)


def test_a_comma_list_of_servers_is_read_as_the_cluster_s_servers():
    stream = StreamSettings.from_mapping(
        {
            "OMNI_NATS_URL": " nats://n1:4222, nats://n2:4222 ,nats://n3:4222",
            "OMNI_DASHBOARD_STREAM_REPLICAS": "3",
        }
    )
    assert stream.nats_servers == ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]
    assert stream.replicas == 3
    assert StreamSettings.from_mapping({}).nats_servers == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OMNI_NATS_URL", "nats://n1:4222,http://n2:4222"),
        ("OMNI_NATS_URL", ",,"),
        ("OMNI_DASHBOARD_STREAM_REPLICAS", "6"),
        ("OMNI_DASHBOARD_STREAM_REPLICAS", "0"),
    ],
)
def test_a_bad_server_list_or_replica_count_stops_start_up(key, value):
    with pytest.raises(ConfigError, match=key):
        StreamSettings.from_mapping({key: value})


def test_killing_the_apps_nats_node_loses_and_repeats_nothing(cluster, tmp_path):
    feed_stream(cluster.urls, replicas=1)
    # One app is given the three servers; the other only the node that will die, so that
    # it can go on only through the servers the cluster announced.
    listed = serve(tmp_path, "listed", ",".join(cluster.urls))
    servers = []
    try:
        status, listed_reader, listed_conn = listed.stream(STREAM, key=API_KEY)
        assert status == 200 and listed_reader.next()["data"]["mode"] == "jetstream"
        servers.append(listed)
        # brought to OMNI_DASHBOARD_STREAM_REPLICAS
        assert cluster.stream_info(FEED_STREAM).config.num_replicas == 3
        cluster.wait_for_replicas(FEED_STREAM, 3)
        victim = connected_node(listed, cluster)
        discovering = serve(tmp_path, "discovering", cluster.urls[victim])
        servers.append(discovering)
        status, found_reader, found_conn = discovering.stream(STREAM, key=API_KEY)
        assert status == 200 and found_reader.next()["data"]["mode"] == "jetstream"
        assert connected_node(discovering, cluster) == victim

        publisher = StoredPublisher(cluster.urls).start()
        before = listed_reader.take(10, name="event.received", timeout=30)
        found_before = found_reader.take(10, name="event.received", timeout=30)
        resume_from = before[-1]
        stored_before_kill = len(publisher.stored)
        cluster.kill(victim)
        wait_until(lambda: len(publisher.stored) >= stored_before_kill + 30, "events stored after")
        publisher.stop()
        stored = publisher.numbers()

        listed_events = before + read_through(listed_reader, stored[-1])
        found_events = found_before + read_through(found_reader, stored[-1])
        assert delivered(listed_events) == stored  # nothing lost, nothing twice, in order
        assert delivered(found_events) == stored
        for events in (listed_events, found_events):
            assert not [e for e in events if e.get("event") == "reset"]
        assert connected_node(listed, cluster) != victim
        assert connected_node(discovering, cluster) != victim
        wait_until(lambda: nats_health(listed) == "ok", "/health to find NATS")

        # Resuming from an id before the loss replays from the two nodes left.
        status, again, again_conn = listed.stream(
            STREAM, key=API_KEY, headers={"Last-Event-ID": resume_from["id"]}
        )
        assert status == 200 and again.next()["event"] == "connected"
        replayed = read_through(again, stored[-1])
        assert delivered(replayed) == stored[stored.index(number(resume_from)) + 1 :]
        for conn in (listed_conn, found_conn, again_conn):
            conn.close()
    finally:
        for served in servers:
            served.app.extensions["omni_dashboard"].live.stop()
            served.close()
