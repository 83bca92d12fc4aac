"""How live streams end under the documented gunicorn: a closed WebSocket gives its slot and
thread back at once, a stalled SSE client is dropped by a deadline on its progress, a graceful
reload ends every stream cleanly, a bad handshake is told which header is wrong, and
``natsConnected`` is null only when no NATS is configured.

Waits are on conditions; their ceiling (tests/waiting.py) only catches what would otherwise
hang."""

import contextlib
import json
import signal
import socket

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from .conftest import API_KEY, build_app
from .deploy_support import Gunicorn
from .live_support import NatsServer, Served, dechunk, omni_message, parse_events, publish
from .waiting import CEILING, deadline_in, expired, remaining, wait_until

pytestmark = pytest.mark.slow  # gunicorn


def one_worker(tmp_path, **settings) -> Gunicorn:
    """The reference host under the documented gunicorn with one worker, started."""
    base = {
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'feed.db'}",
        "OMNI_API_KEY": API_KEY,
        "WEB_CONCURRENCY": 1,
    }
    return Gunicorn(tmp_path, {**base, **settings}).start()


@pytest.fixture(scope="module")
def idle_gunicorn(tmp_path_factory):
    """3 stream slots, 3 more threads, and a heartbeat so rare (300 s) that nothing but the
    close itself can free a slot while a test runs."""
    server = one_worker(
        tmp_path_factory.mktemp("idle"),
        OMNI_DASHBOARD_STREAM_HEARTBEAT=300,
        OMNI_DASHBOARD_STREAM_MAX_CLIENTS=3,
        OMNI_HTTP_THREADS=3,
    )
    yield server
    server.stop()
    assert_clean(server)


def assert_clean(server: Gunicorn) -> None:
    """Nothing went wrong in the server's eyes: no traceback, no error, no worker killed."""
    log = server.log.read_text()
    for trouble in ("Traceback", "[ERROR]", "WORKER TIMEOUT", "[CRITICAL]"):
        assert trouble not in log, log


def open_websocket(port: int, sockets: contextlib.ExitStack):
    """A WebSocket past its ``connected`` frame, or None when the server is at its cap."""
    url = f"ws://127.0.0.1:{port}/api/v2/events/ws?api_key={API_KEY}"
    try:
        ws = sockets.enter_context(connect(url, open_timeout=10))
    except InvalidStatus as refused:
        assert refused.response.status_code == 503
        return None
    assert json.loads(ws.recv(timeout=10))["event"] == "connected"
    return ws


def test_closed_websockets_give_their_slots_and_threads_back_at_once(idle_gunicorn):
    """Reconnect waves at the cap: each needs the slots (and threads) the last one left.
    Three waves of three need nine threads, and the worker has six."""
    port = idle_gunicorn.port
    for wave in range(3):
        with contextlib.ExitStack() as stack:
            sockets = [
                wait_until(lambda: open_websocket(port, stack), f"a slot in wave {wave}")
                for _ in range(3)
            ]
            assert open_websocket(port, stack) is None  # the cap holds
            sockets[0].close()  # a clean close: a close frame
            for ws in sockets[1:]:  # the client goes away without one
                ws.socket.shutdown(socket.SHUT_RDWR)


def handshake(port: int, headers: dict) -> tuple[int, dict]:
    """A WebSocket request with ``headers`` (and the key): the status and JSON body."""
    lines = ["GET /api/v2/events/ws HTTP/1.1", "Host: x", f"x-api-key: {API_KEY}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"}" not in answer.partition(b"\r\n\r\n")[2]:
            answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body[body.index(b"{") :])


GOOD_HANDSHAKE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"Connection": "keep-alive"}, {"Connection"}),
        ({"Upgrade": "h2c"}, {"Upgrade"}),
        ({"Connection": "close", "Upgrade": "websocket2"}, {"Connection", "Upgrade"}),
        ({"Connection": None, "Upgrade": None}, {"Connection", "Upgrade"}),
        ({"Sec-WebSocket-Version": "8"}, {"Sec-WebSocket-Version"}),
    ],
)
def test_a_bad_handshake_is_told_which_header_is_wrong(idle_gunicorn, changed, named):
    headers = {k: v for k, v in {**GOOD_HANDSHAKE, **changed}.items() if v is not None}
    status, body = handshake(idle_gunicorn.port, headers)
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert set(body["error"]["details"]) == named


def test_nats_connected_is_null_only_when_no_nats_is_configured(tmp_path):
    """NATS down from the start: every stream says false, then true once NATS is up."""
    nats = NatsServer(tmp_path / "late")  # its port, with nothing listening yet
    app = build_app(
        f"sqlite:///{tmp_path / 'late.db'}",
        OMNI_NATS_URL=nats.url,
        OMNI_DASHBOARD_STREAM_HEARTBEAT=1,
    )
    served = Served(app)
    hangups = []
    try:
        readers = []
        for _ in range(10):
            status, reader, hangup = served.stream("/api/v2/events/stream", key=API_KEY)
            assert status == 200
            hangups.append(hangup)
            readers.append(reader)
            assert reader.next(timeout=CEILING)["data"]["natsConnected"] is False
        nats.start()
        for reader in readers:
            status = reader.take(1, name="status", timeout=CEILING)[0]
            assert status["data"]["natsConnected"] is True
    finally:
        for hangup in hangups:
            hangup.close()
        app.extensions["omni_dashboard"].live.stop()
        served.close()
        nats.stop()
    without = build_app(f"sqlite:///{tmp_path / 'none.db'}")
    served = Served(without)
    try:
        status, reader, hangup = served.stream("/api/v2/events/stream", key=API_KEY)
        assert reader.next(timeout=CEILING)["data"]["natsConnected"] is None
        hangup.close()
    finally:
        without.extensions["omni_dashboard"].live.stop()
        served.close()


@pytest.fixture(scope="module")
def one_slot_gunicorn(module_nats, tmp_path_factory):
    """One stream slot; a client that makes no progress for 2 s is dropped, and only that
    deadline ends a stalled stream (its queue never overflows)."""
    server = one_worker(
        tmp_path_factory.mktemp("one-slot"),
        OMNI_NATS_URL=module_nats.url,
        OMNI_DASHBOARD_STREAM_MAX_CLIENTS=1,
        OMNI_DASHBOARD_STREAM_SEND_TIMEOUT=2,
        OMNI_DASHBOARD_STREAM_QUEUE=100_000,
    )
    yield server
    server.stop()
    assert_clean(server)


def raw_stream(port: int) -> socket.socket:
    """An SSE stream on a plain socket (default buffers), once its ``connected`` event came;
    nothing of it is read."""
    sock = socket.create_connection(("127.0.0.1", port))
    request = f"GET /api/v2/events/stream HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n\r\n"
    sock.sendall(request.encode())
    wait_until(lambda: b"event: connected" in sock.recv(65536, socket.MSG_PEEK), "connected")
    return sock


def stream_opens(base: str) -> bool:
    """Whether a stream opens now (the slot is free); it is closed again at once."""
    response = requests.get(
        base + "/api/v2/events/stream", headers={"x-api-key": API_KEY}, stream=True, timeout=10
    )
    response.close()
    return response.status_code == 200


def test_a_stalled_client_is_dropped_by_a_deadline_on_its_progress(one_slot_gunicorn, module_nats):
    """A client that stops reading once its receive buffer is full is dropped 2 s later,
    although the server's own send buffer still has room for all that was published (a
    deadline on one send would never fire: every send goes through)."""
    base, port = one_slot_gunicorn.base, one_slot_gunicorn.port
    stalled = raw_stream(port)
    assert not stream_opens(base)  # the stalled client holds the one slot
    pad = "x" * 4000
    batch = [omni_message("message.received", n=n) for n in range(100)]  # 400 KB
    publish(module_nats.url, [{**message, "id": pad + message["id"]} for message in batch])
    wait_until(lambda: stream_opens(base), "the stalled client's slot")
    stalled.close()


def read_sse_to_the_end(sock: socket.socket) -> tuple[list[dict], bool]:
    """The events of a chunked SSE body read to its end, and whether it ended with the last
    chunk (False: the connection closed without it)."""
    raw = b""
    deadline = deadline_in()
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        assert not expired(deadline), "the stream did not end"
        sock.settimeout(remaining(deadline))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            chunk = b""
        if not chunk:
            break
        raw += chunk
    body, cut = dechunk(raw.partition(b"\r\n\r\n")[2])
    events, _ = parse_events(body)
    return [e for e in events if "event" in e], raw.endswith(b"\r\n0\r\n\r\n") and not cut


def sse_events_of(response, count: int) -> list[dict]:
    """The events of an SSE response until ``count`` of them are ``event.received``."""
    events, rest = [], ""
    for chunk in response.iter_content(None):
        parsed, rest = parse_events(rest + chunk.decode())
        events += [e for e in parsed if "event" in e]
        if len(received_ids(events)) >= count:
            return events
    raise AssertionError(f"the stream ended after {events}")


def received_ids(events: list[dict]) -> list[str]:
    return [e["data"]["id"] for e in events if e["event"] == "event.received"]


def test_a_graceful_reload_ends_streams_cleanly_and_clients_resume(tmp_path, nats_server):
    """``kill -HUP``: the old worker ends its SSE body with the last chunk and closes its
    WebSocket with 1001 at once, says nothing false about NATS, and exits without being
    killed; both clients resume on the new worker and miss nothing."""
    server = one_worker(
        tmp_path, OMNI_NATS_URL=nats_server.url, OMNI_DASHBOARD_STREAM_JETSTREAM="create"
    )
    try:
        sse = raw_stream(server.port)
        with contextlib.ExitStack() as stack:
            ws = open_websocket(server.port, stack)
            publish(nats_server.url, [omni_message("message.received", n=n) for n in range(5)])
            ws_events = [json.loads(ws.recv(timeout=CEILING)) for _ in range(5)]
            server.process.send_signal(signal.SIGHUP)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws_events.append(json.loads(ws.recv(timeout=CEILING)))
            assert closed.value.rcvd.code == 1001
        sse_events, ended_cleanly = read_sse_to_the_end(sse)
        sse.close()
        assert ended_cleanly
        for events in (sse_events, ws_events):
            assert received_ids(events) == [f"message.received-inst-1-{n}" for n in range(5)]
            assert all(e["data"].get("natsConnected") is not False for e in events), events
        publish(nats_server.url, [omni_message("message.received", n=n) for n in range(5, 10)])
        sse_last = [e["id"] for e in sse_events if e["event"] == "event.received"][-1]
        headers = {"x-api-key": API_KEY, "Last-Event-ID": sse_last}
        with requests.get(
            server.base + "/api/v2/events/stream", headers=headers, stream=True, timeout=CEILING
        ) as resumed:
            assert received_ids(sse_events_of(resumed, 5)) == [
                f"message.received-inst-1-{n}" for n in range(5, 10)
            ]
        url = f"ws://127.0.0.1:{server.port}/api/v2/events/ws?api_key={API_KEY}"
        with connect(f"{url}&lastEventId={ws_events[4]['id']}", open_timeout=CEILING) as again:
            frames = [json.loads(again.recv(timeout=CEILING)) for _ in range(6)]
        assert [f["event"] for f in frames] == ["connected"] + ["event.received"] * 5
        assert received_ids(frames) == [f"message.received-inst-1-{n}" for n in range(5, 10)]
    finally:
        server.stop()
    assert_clean(server)


@pytest.mark.parametrize("writer", ["auto", "thread"])
def test_end_streams_ends_each_stream_cleanly_and_takes_no_new_one(tmp_path, writer):
    """The plugin's own call, under werkzeug: what a host's shutdown hook gets."""
    app = build_app(f"sqlite:///{tmp_path / 'end.db'}", OMNI_DASHBOARD_STREAM_WRITER=writer)
    served = Served(app)
    live = app.extensions["omni_dashboard"].live
    try:
        sse = raw_stream(served.port)
        with contextlib.ExitStack() as stack:
            ws = open_websocket(served.port, stack)
            live.publish("message.received.slack.inst-1", omni_message("message.received"))
            assert json.loads(ws.recv(timeout=CEILING))["event"] == "event.received"
            live.end_streams()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=CEILING)
            assert closed.value.rcvd.code == 1001
        events, ended_cleanly = read_sse_to_the_end(sse)
        sse.close()
        assert ended_cleanly
        assert [e["event"] for e in events] == ["connected", "event.received"]
        status, body, _ = served.stream("/api/v2/events/stream", key=API_KEY)
        assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        live.stop()
        served.close()
