"""Two app nodes (each the documented gunicorn command) behind the documented nginx with
docs/deployment.md's upstream of both, on one PostgreSQL and one NATS with JetStream: a
client whose node dies resumes on the other with nothing lost or repeated, and refreshes
started on both nodes at once run one at a time, each slot rolled once."""

import subprocess
from datetime import datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from host_example.seed import SeedPlan, seed
from host_example.tables import instances
from omni_dashboard_plugin.rollups.kinds import state

from .conftest import API_KEY, build_app
from .deploy_support import Gunicorn, Nginx, nginx_binary, nodes_site
from .live_support import NatsServer, omni_message, open_sse, publish
from .rollup_support import Pair, assert_same
from .test_install import flask_command, sidecar_io
from .test_live_cluster import delivered, read_through
from .waiting import wait_until

pytestmark = pytest.mark.slow

STREAM = "/api/v2/events/stream"


@pytest.fixture
def database(own_pg_url):
    """Omni's tables and the plugin's, made before the nodes start (as a deploy step)."""
    build_app(own_pg_url, OMNI_DASHBOARD_ROLLUPS="on")
    return own_pg_url


def node_settings(database: str, nats_url: str) -> dict:
    return {
        "OMNI_DATABASE_URL": database,
        "OMNI_API_KEY": API_KEY,
        "OMNI_NATS_URL": nats_url,
        "OMNI_DASHBOARD_STREAM_JETSTREAM": "create",
        "OMNI_DASHBOARD_STREAM_HEARTBEAT": 1,
        "OMNI_DASHBOARD_ROLLUPS": "on",
        "OMNI_DASHBOARD_ROLLUPS_REFRESH": "cron",
        "WEB_CONCURRENCY": 1,
    }


def open_stream(port: int, last_id: str | None = None):
    headers = {"Last-Event-ID": last_id} if last_id else {}
    status, reader, connection = open_sse(port, STREAM, API_KEY, headers)
    assert status == 200, reader
    return connection, reader


def stream_clients(node: Gunicorn) -> float:
    """The node's open streams, from its scrape."""
    scrape = requests.get(
        f"{node.base}/api/v2/dashboard/metrics", headers={"x-api-key": API_KEY}, timeout=10
    ).text
    families = {family.name: family for family in text_string_to_metric_families(scrape)}
    return families["omni_dashboard_stream_clients"].samples[0].value


def messages(numbers) -> list[dict]:
    return [omni_message("message.received", n=n) for n in numbers]


def test_a_client_whose_node_dies_resumes_on_the_other_with_nothing_lost(database, tmp_path):
    nginx_binary()  # a skip for want of nginx comes before any process is started
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    settings = node_settings(database, nats.url)
    nodes = [Gunicorn(tmp_path, settings).start() for _ in range(2)]
    nginx = Nginx(tmp_path, site=nodes_site([node.port for node in nodes])).start()
    try:
        response, reader = open_stream(nginx.port)
        assert reader.next()["data"]["mode"] == "jetstream"
        publish(nats.url, messages(range(10)))
        first = read_through(reader, 9)
        serving = next(node for node in nodes if stream_clients(node) == 1)
        survivor = next(node for node in nodes if node is not serving)
        assert stream_clients(survivor) == 0

        serving.kill()
        while not reader.next(timeout=30).get("closed"):  # nginx ends the stream
            pass
        response.close()
        publish(nats.url, messages(range(10, 20)))  # while the client is away

        response, reader = open_stream(nginx.port, last_id=first[-1]["id"])
        assert reader.next()["event"] == "connected"
        assert stream_clients(survivor) == 1
        publish(nats.url, messages(range(20, 30)))
        second = read_through(reader, 29)
        response.close()
        assert delivered(first) + delivered(second) == list(range(30))
        assert not [e for e in first + second if e.get("event") == "reset"]
    finally:
        nginx.stop()
        for node in nodes:
            node.stop()
        nats.stop()


def test_refreshes_started_on_both_nodes_run_one_at_a_time(database):
    now = datetime.utcnow().replace(microsecond=0)
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg2://"))
    seed(engine, SeedPlan(events=4000, days=6, now=now))
    # The first refresher to take the lock waits on the watermark, its chunk's first read
    # (a long first chunk), so that the other finds the refresh running. Not on the events:
    # the start-up check reads their columns, and both processes would wait there until the
    # host's statement timeout (30 s) ended it.
    with engine.connect() as lock:
        lock.execute(text(f"LOCK TABLE {state.name} IN ACCESS EXCLUSIVE MODE"))
        started = []
        for _ in range(2):  # one refresh per node, each with the node's settings
            argv, env = flask_command(database, "refresh")
            started.append(subprocess.Popen(argv, env=env, **sidecar_io()))
        wait_until(lambda: any(p.poll() is not None for p in started), "a refresh to end")
        stopped = next(p for p in started if p.poll() is not None)
        running = next(p for p in started if p is not stopped)
        assert stopped.returncode == 0
        assert stopped.stdout.read().strip() == (
            "another process is refreshing; stopped after 0 chunks"
        )
        assert running.poll() is None
        lock.rollback()
    assert running.wait(60) == 0
    assert running.stdout.read().startswith("rolled ")
    engine.dispose()

    pair = Pair.attach(database)
    pair.clock.now = now
    assert pair.watermark().watermark_slot > pair.watermark().start_slot
    with pair.engine.connect() as connection:
        instance = connection.execute(select(instances.c.id).limit(1)).scalar()
    assert_same(pair, (now - timedelta(days=3, minutes=7), now - timedelta(hours=2)), instance)
