"""The live feed against a real nats-server: delivery, filters, resume, overflow, outages."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from omni_dashboard_plugin.live import bridge

from .conftest import API_KEY, build_app
from .live_support import (
    Served,
    add_streams,
    free_port,
    hub_sequenced,
    omni_message,
    publish,
    sample,
    wait_for_hub,
    wait_for_port,
)
from .waiting import CEILING, finishes, wait_until

pytestmark = pytest.mark.slow  # a real nats-server


def live_app(tmp_path, nats_url=None, **config):
    settings = {"OMNI_DASHBOARD_STREAM_HEARTBEAT": 1, **config}
    if nats_url:
        settings["OMNI_NATS_URL"] = nats_url
    return build_app(f"sqlite:///{tmp_path / 'live.db'}", **settings)


@pytest.fixture(params=["auto", "thread"])
def writer(request):
    """Every stream test runs with the socket writer and with a thread per stream."""
    return request.param


@pytest.fixture
def served(tmp_path, nats_server, request, writer):
    params = getattr(request, "param", {})
    if params.get("jetstream"):
        add_streams(nats_server.url)
    config = {"OMNI_DASHBOARD_STREAM_WRITER": writer, **params.get("config", {})}
    app = live_app(tmp_path, nats_server.url, **config)
    server = Served(app)
    yield server, app, nats_server
    app.extensions["omni_dashboard"].live.stop()
    server.close()


def messages(count, start=0, **kwargs):
    return [omni_message("message.received", n=n, **kwargs) for n in range(start, start + count)]


def connect(server, path="/api/v2/events/stream", **kwargs):
    status, reader, conn = server.stream(path, key=API_KEY, **kwargs)
    assert status == 200, reader
    connected = reader.next()
    assert connected["event"] == "connected"
    return reader, conn, connected


def test_delivery_in_order_with_ids_and_connected_first(served, writer):
    server, app, nats = served
    reader, conn, connected = connect(server)
    assert connected["data"]["natsConnected"] is True and connected["id"]
    publish(nats.url, messages(30))
    events = reader.take(30)
    uses_writer_thread = app.extensions["omni_dashboard"].live._writer is not None
    assert uses_writer_thread == (writer == "auto")
    assert [e["data"]["id"] for e in events] == [f"message.received-inst-1-{n}" for n in range(30)]
    assert all(e["event"] == "event.received" and e["id"] for e in events)
    assert len({e["id"] for e in events}) == 30
    conn.close()


def test_instance_status_events(served):
    server, _, nats = served
    reader, conn, _ = connect(server)
    publish(
        nats.url,
        [
            omni_message("instance.connected", channel="discord", instance="i-7"),
            omni_message("instance.disconnected", channel="discord", instance="i-7", n=1),
        ],
    )
    first, second = reader.take(2)
    assert first["event"] == second["event"] == "instance.status"
    assert first["data"] == {"instanceId": "i-7", "channel": "discord", "isConnected": True}
    assert second["data"]["isConnected"] is False
    conn.close()


def test_filters(served):
    server, _, nats = served
    by_instance, c1, _ = connect(server, "/api/v2/events/stream?instanceId=inst-2")
    by_channel, c2, _ = connect(server, "/api/v2/events/stream?channel=telegram")
    by_types, c3, _ = connect(server, "/api/v2/events/stream?types=message.sent,instance.connected")
    mixed = [
        omni_message("message.received", instance="inst-2", n=1),
        omni_message("message.received", channel="telegram", n=2),
        omni_message("message.sent", n=3),
        omni_message("instance.connected", n=4),
        omni_message("message.received", n=5),
    ]
    publish(nats.url, mixed + messages(1, start=99, instance="inst-2", channel="telegram"))
    assert [e["data"].get("id") for e in by_instance.take(2)] == [
        "message.received-inst-2-1",
        "message.received-inst-2-99",
    ]
    assert [e["data"]["id"] for e in by_channel.take(2)] == [
        "message.received-inst-1-2",
        "message.received-inst-2-99",
    ]
    types = by_types.take(2)
    assert [e["event"] for e in types] == ["event.received", "instance.status"]
    assert types[0]["data"]["eventType"] == "message.sent"
    for conn in (c1, c2, c3):
        conn.close()


def _resume(server, nats, reader, conn):
    hub = server.app.extensions["omni_dashboard"].live.hub()
    publish(nats.url, messages(5))
    seen = reader.take(5)
    conn.close()
    taken = hub_sequenced(hub)
    publish(nats.url, messages(7, start=5))
    wait_for_hub(hub, 7, taken)
    again, conn2, connected = connect(server, headers={"Last-Event-ID": seen[-1]["id"]})
    assert connected["id"] == seen[-1]["id"]
    missed = again.take(7)
    assert [e["data"]["id"] for e in missed] == [
        f"message.received-inst-1-{n}" for n in range(5, 12)
    ]
    publish(nats.url, messages(2, start=12))
    live = again.take(2)
    assert [e["data"]["id"] for e in live] == [
        "message.received-inst-1-12",
        "message.received-inst-1-13",
    ]
    conn2.close()
    return seen, missed


def test_resume_from_the_replay_buffer(served):
    server, app, nats = served
    reader, conn, _ = connect(server)
    _resume(server, nats, reader, conn)
    assert app.extensions["omni_dashboard"].live.hub().mode == "buffer"


@pytest.mark.parametrize("served", [{"jetstream": True}], indirect=True)
def test_resume_from_jetstream(served):
    server, _app, nats = served
    reader, conn, connected = connect(server)
    assert connected["data"]["mode"] == "jetstream"
    _seen, missed = _resume(server, nats, reader, conn)
    assert "MESSAGE=" in missed[-1]["id"] and "INSTANCE=" in missed[-1]["id"]


@pytest.mark.parametrize("served", [{"jetstream": True}], indirect=True)
def test_jetstream_resume_works_on_a_fresh_process(served, tmp_path):
    server, _, nats = served
    reader, conn, _ = connect(server)
    publish(nats.url, messages(3))
    last = reader.take(3)[-1]["id"]
    conn.close()
    publish(nats.url, messages(4, start=3))
    other_app = live_app(tmp_path, nats.url)  # a second app: its own hub and bridge
    other = Served(other_app)
    try:
        again, conn2, _ = connect(other, headers={"Last-Event-ID": last})
        got = again.take(4)
        assert [e["data"]["id"] for e in got] == [
            f"message.received-inst-1-{n}" for n in range(3, 7)
        ]
        conn2.close()
    finally:
        other.close()
        other_app.extensions["omni_dashboard"].live.stop()


@pytest.mark.parametrize("served", [{"config": {"OMNI_DASHBOARD_STREAM_REPLAY": 5}}], indirect=True)
def test_a_gap_older_than_the_buffer_gets_reset(served):
    server, app, nats = served
    hub = app.extensions["omni_dashboard"].live.hub()
    reader, conn, _ = connect(server)
    publish(nats.url, messages(2))
    last = reader.take(2)[-1]["id"]
    conn.close()
    taken = hub_sequenced(hub)
    publish(nats.url, messages(20, start=2))
    wait_for_hub(hub, 20, taken)
    again, conn2, _ = connect(server, headers={"Last-Event-ID": last})
    reset = again.next()
    assert reset["event"] == "reset" and reset["data"]["refetch"] == "/api/v2/dashboard"
    publish(nats.url, messages(1, start=50))
    assert again.take(1)[0]["data"]["id"] == "message.received-inst-1-50"
    conn2.close()
    # An id from another process (or garbage in the header) is a reset, not an error.
    third, conn3, _ = connect(server, headers={"Last-Event-ID": "@0123456789ab=4"})
    assert third.next()["event"] == "reset"
    conn3.close()


@pytest.mark.parametrize("served", [{"config": {"OMNI_DASHBOARD_STREAM_QUEUE": 8}}], indirect=True)
def test_a_stalled_client_overflows_alone(served):
    from omni_dashboard_plugin.live.hub import Filters
    from omni_dashboard_plugin.live.sse import next_items

    server, app, nats = served
    fast, conn, _ = connect(server)
    hub = app.extensions["omni_dashboard"].live.hub()
    stalled = hub.subscribe(Filters(), None)  # a client that never reads
    publish(nats.url, messages(40), pace=0.005)
    assert [e["data"]["id"] for e in fast.take(40)][-1] == "message.received-inst-1-39"
    meter = app.extensions["omni_dashboard"].metrics
    assert stalled.subscription.closed
    assert sample(meter, "omni_dashboard_stream_overflows_total") == 1
    got = next_items(stalled, 1)
    assert [i.name for i in got] == ["event.received"] * 8 + ["overflow"]
    assert got[-1].final and got[-1].id == got[-2].id
    assert got[-2].data["id"] == "message.received-inst-1-7"
    conn.close()


def test_nats_outage_mid_stream(served):
    server, _, nats = served
    reader, conn, _ = connect(server)
    publish(nats.url, messages(2))
    reader.take(2)
    nats.stop()
    down = reader.take(1, name="status", timeout=15)[0]
    assert down["data"]["natsConnected"] is False
    nats.start()
    up = reader.take(1, name="status", timeout=20)[0]
    assert up["data"]["natsConnected"] is True
    publish(nats.url, messages(3, start=10))
    assert [e["data"]["id"] for e in reader.take(3, name="event.received")] == [
        f"message.received-inst-1-{n}" for n in range(10, 13)
    ]
    conn.close()


def test_malformed_messages_are_counted_and_skipped(served):
    server, app, nats = served
    reader, conn, _ = connect(server)
    raw = [
        ("message.received.slack.x", b"{not json"),
        ("message.received.slack.x", b'{"id": "no type"}'),
    ]
    publish(nats.url, messages(1), raw=raw)
    publish(nats.url, messages(1, start=1))
    assert [e["data"]["id"] for e in reader.take(2)] == [
        "message.received-inst-1-0",
        "message.received-inst-1-1",
    ]
    meter = app.extensions["omni_dashboard"].metrics
    assert sample(meter, "omni_dashboard_stream_malformed_total") == 2
    conn.close()


def test_auth_and_bad_arguments_are_refused_before_streaming(served):
    server, _, _ = served
    status, body, conn = server.stream("/api/v2/events/stream")
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"
    status, _, conn = server.stream(f"/api/v2/events/stream?api_key={API_KEY}")
    assert status == 200
    conn.close()
    status, body, _ = server.stream("/api/v2/events/stream?lastEventId=%%%", key=API_KEY)
    assert status == 422 and "lastEventId" in body["error"]["details"]


@pytest.mark.parametrize(
    "served", [{"config": {"OMNI_DASHBOARD_STREAM_MAX_CLIENTS": 2}}], indirect=True
)
def test_connection_cap(served):
    server, _, _ = served
    _, c1, _ = connect(server)
    _, c2, _ = connect(server)
    status, body, _ = server.stream("/api/v2/events/stream", key=API_KEY)
    assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    c1.close()

    def opened():
        status, _, conn = server.stream("/api/v2/events/stream", key=API_KEY)
        if status == 200:
            return conn
        conn.close()
        return None

    # The server notices the close at the next heartbeat.
    c3 = wait_until(opened, "the closed stream's slot to be given back")
    c2.close()
    c3.close()


def test_websocket_twin(served):
    from simple_websocket import Client

    server, _, nats = served
    ws = Client.connect(
        f"ws://127.0.0.1:{server.port}/api/v2/events/ws?types=message.received&api_key={API_KEY}"
    )
    try:
        hello = json.loads(ws.receive(timeout=5))
        assert hello["event"] == "connected" and hello["id"]
        publish(nats.url, [omni_message("message.sent", n=0), *messages(2, start=1)])
        frames = [json.loads(ws.receive(timeout=5)) for _ in range(2)]
        assert [f["data"]["id"] for f in frames] == [
            "message.received-inst-1-1",
            "message.received-inst-1-2",
        ]
        assert all(set(f) == {"event", "id", "data"} for f in frames)
    finally:
        ws.close()
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    bad_types = "/api/v2/events/ws?types=" + ",".join(["t"] * 30)
    status, body, _ = server.stream(bad_types, key=API_KEY, headers=handshake)
    assert status == 422 and "types" in body["error"]["details"]
    status, body, _ = server.stream("/api/v2/events/ws", headers=handshake)
    assert status == 401


SERVE = textwrap.dedent(
    """
    import sys
    from werkzeug.serving import run_simple
    from host_example import create_app
    app = create_app({"OMNI_DATABASE_URL": sys.argv[1], "OMNI_API_KEY": sys.argv[2],
                      "OMNI_NATS_URL": sys.argv[3], "OMNI_DASHBOARD_STREAM_HEARTBEAT": 1})
    run_simple("127.0.0.1", int(sys.argv[4]), app, threaded=True)
    """
)


def test_two_server_processes_each_deliver_every_event(nats_server, tmp_path):
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVE,
                f"sqlite:///{tmp_path / f'p{i}.db'}",
                API_KEY,
                nats_server.url,
                str(port),
            ],
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, port in enumerate(ports)
    ]
    try:
        readers = []
        for port in ports:
            wait_for_port(port)
            remote = Served.__new__(Served)
            remote.port = port
            readers.append(connect(remote))
        publish(nats_server.url, messages(25))
        for reader, conn, _ in readers:
            got = reader.take(25)
            assert [e["data"]["id"] for e in got] == [
                f"message.received-inst-1-{n}" for n in range(25)
            ]
            conn.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def test_health_checks_nats_for_real_and_never_waits_on_it(tmp_path, nats_server):
    app = live_app(tmp_path, nats_server.url, OMNI_HEALTH_NATS_TTL=0)
    client = app.test_client()

    def health(status):
        response = client.get("/api/v2/health")
        return response if response.status_code == status else None

    # The first probe started with the app.
    response = wait_until(lambda: health(200), "/health to report NATS up")
    nats = response.get_json()["checks"]["nats"]
    assert nats["status"] == "ok" and nats["details"] == {"connected": True}
    assert isinstance(nats["latency"], int) and nats["latency"] >= 0
    nats_server.stop()
    # The background probe notices; /health answers from what it last found meanwhile.
    response = wait_until(lambda: health(503), "/health to report NATS down")
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["checks"]["nats"] == {
        "status": "error",
        "latency": None,
        "details": {"connected": False},
    }


def test_heartbeats_keep_an_idle_stream_alive(served):
    server, _, _ = served
    reader, conn, _ = connect(server)
    wait_until(
        lambda: reader.next(timeout=CEILING, skip_comments=False).get("comment") == "heartbeat",
        "a heartbeat on the idle stream",
    )
    conn.close()


@pytest.mark.parametrize(
    "served", [{"config": {"OMNI_DASHBOARD_STREAM_LIFETIME_MS": 400}}], indirect=True
)
def test_stream_lifetime_ends_the_stream_and_resume_continues(served):
    server, app, nats = served
    hub = app.extensions["omni_dashboard"].live.hub()
    reader, conn, _ = connect(server)
    publish(nats.url, messages(2))
    last = reader.take(2)[-1]["id"]
    assert reader.next(timeout=CEILING).get("closed")
    taken = hub_sequenced(hub)
    publish(nats.url, messages(3, start=2))
    wait_for_hub(hub, 3, taken)
    again, conn2, _ = connect(server, headers={"Last-Event-ID": last})
    assert [e["data"]["id"] for e in again.take(3)] == [
        f"message.received-inst-1-{n}" for n in range(2, 5)
    ]
    conn.close()
    conn2.close()


@pytest.mark.parametrize("writer", ["auto"])  # the replay path does not depend on the writer
@pytest.mark.parametrize("served", [{"jetstream": True}], indirect=True)
def test_jetstream_resume_while_nats_is_down_resets_instead_of_failing(served, monkeypatch):
    # The replay tries JetStream again for REPLAY_SECONDS (25 s: a cluster electing leaders)
    # before it gives up; 2 s still sees it try again (each try at most RESUME_TIMEOUT, 1 s)
    # and give up, without waiting out the production ceiling.
    monkeypatch.setattr(bridge, "REPLAY_SECONDS", 2)
    server, _, nats = served
    reader, conn, _ = connect(server)
    publish(nats.url, messages(2))
    last = reader.take(2)[-1]["id"]
    conn.close()
    nats.stop()
    again, conn2, _ = connect(server, headers={"Last-Event-ID": last})
    reset = again.next(timeout=40)
    assert reset["event"] == "reset"
    conn2.close()


def test_health_answers_at_once_when_nats_accepts_but_never_speaks(tmp_path):
    import socket as sockets

    silent = sockets.socket()  # listens, never accepts: a NATS whose packets go nowhere
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        client = live_app(tmp_path, url, OMNI_HEALTH_NATS_TTL=0).test_client()
        for _ in range(5):  # how soon it answers: bench/deadlines.py
            response = finishes(lambda: client.get("/api/v2/health"), "/health to answer")
            assert response.status_code == 503
            assert response.get_json()["checks"]["nats"]["status"] == "error"
    finally:
        silent.close()
