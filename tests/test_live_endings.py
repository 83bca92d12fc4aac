"""How live streams end under the documented gunicorn: a closed WebSocket gives its slot and
thread back at once, a stalled SSE client is dropped by a deadline on its progress, a graceful
reload ends every stream cleanly, a bad handshake is told which header is wrong, and
``natsConnected`` is null only when no NATS is configured.

Waits are on conditions; their ceilings (HANG) only catch what would otherwise hang."""

import contextlib
import json
import socket
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .conftest import API_KEY, build_app
from .deploy_support import Gunicorn
from .live_support import NatsServer, Served

HANG = 20.0  # seconds: a ceiling far above what any wait below needs


def until(condition, what: str, ceiling: float = HANG):
    """Poll ``condition`` until it returns something true; fail after ``ceiling`` seconds."""
    deadline = time.monotonic() + ceiling
    while not (value := condition()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def idle_gunicorn(tmp_path_factory):
    """One worker, 3 stream slots, 3 more threads, and a heartbeat so rare (300 s) that
    nothing but the close itself can free a slot while a test runs."""
    tmp_path = tmp_path_factory.mktemp("idle")
    settings = {
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'idle.db'}",
        "OMNI_API_KEY": API_KEY,
        "OMNI_DASHBOARD_STREAM_HEARTBEAT": 300,
        "OMNI_DASHBOARD_STREAM_MAX_CLIENTS": 3,
        "OMNI_HTTP_THREADS": 3,
        "WEB_CONCURRENCY": 1,
    }
    server = Gunicorn(tmp_path, settings).start()
    yield server
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log and "[ERROR]" not in log, log


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
                until(lambda: open_websocket(port, stack), f"a slot in wave {wave}")
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
            assert reader.next(timeout=HANG)["data"]["natsConnected"] is False
        nats.start()
        for reader in readers:
            status = reader.take(1, name="status", timeout=HANG)[0]
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
        assert reader.next(timeout=HANG)["data"]["natsConnected"] is None
        hangup.close()
    finally:
        without.extensions["omni_dashboard"].live.stop()
        served.close()
