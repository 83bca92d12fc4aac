"""The live feed in the documented deployment (gunicorn gthread, docs/live-feed.md):
correct HTTP, stalled clients, bad WebSocket handshakes, resume across workers."""

import json
import select
import socket
import time

import pytest
import requests
import sseclient

from .conftest import API_KEY, build_app
from .deploy_support import Gunicorn, Nginx
from .live_support import NatsServer, Served, omni_message, publish
from .waiting import CEILING, deadline_in, expired, pace, wait_until

pytestmark = pytest.mark.slow  # gunicorn, nginx and nats-server

STREAM = "/api/v2/events/stream"


@pytest.fixture(scope="module")
def nats(module_nats):
    return module_nats


def raw_request(port: int, request: bytes, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def stream_request(method="GET", path=STREAM, extra="") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
        f"Accept: text/event-stream\r\n{extra}\r\n"
    ).encode()


def read_head(sock: socket.socket) -> tuple[str, bytes]:
    data = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def read_to_end(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything until the server closes (True), or what came within ``timeout`` (False)."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        return data, True
    return data, False


@pytest.fixture(scope="module")
def small_gunicorn(nats, tmp_path_factory):
    """One worker, 3 stream slots and 3 more threads; clients hung up on after 2 s."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    settings = {
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'small.db'}",
        "OMNI_API_KEY": API_KEY,
        "OMNI_NATS_URL": nats.url,
        "OMNI_DASHBOARD_STREAM_HEARTBEAT": 1,
        "OMNI_DASHBOARD_STREAM_MAX_CLIENTS": 3,
        "OMNI_HTTP_THREADS": 3,
        "OMNI_DASHBOARD_STREAM_SEND_TIMEOUT": 2,
        "OMNI_DASHBOARD_STREAM_QUEUE": 100_000,  # only the send timeout ends a stalled client
        "WEB_CONCURRENCY": 1,
    }
    server = Gunicorn(tmp_path, settings).start()
    yield server
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log and "[ERROR]" not in log, log


def test_the_stream_is_ordinary_http(small_gunicorn):
    sock = raw_request(small_gunicorn.port, stream_request())
    head, rest = read_head(sock)
    while b"\n\n" not in rest:  # the first chunk: the opening block
        rest += sock.recv(4096)
    assert head.startswith("HTTP/1.1 200")
    lowered = head.lower()
    assert "transfer-encoding: chunked" in lowered and "date: " in lowered
    assert "content-type: text/event-stream" in lowered and "x-accel-buffering: no" in lowered
    size, _, first = rest.partition(b"\r\n")
    assert int(size, 16) > 0 and first.startswith(b"retry: 3000\nid: ")
    sock.close()
    head_only = raw_request(small_gunicorn.port, stream_request("HEAD"))
    head, rest = read_head(head_only)
    assert head.startswith("HTTP/1.1 200") and "text/event-stream" in head
    pace(0.3, "time for a body that must not come")
    head_only.settimeout(0.5)
    with pytest.raises(TimeoutError):  # no body follows the head of a HEAD response
        assert head_only.recv(100) == b""
    head_only.close()


def open_streams(base: str, count: int) -> None:
    """Wait until ``count`` streams can be open at once (the server may still be noticing
    clients that just left), closing them after each try."""

    def all_open() -> bool:
        opened = [
            requests.get(base + STREAM, headers={"x-api-key": API_KEY}, stream=True, timeout=30)
            for _ in range(count)
        ]
        codes = [r.status_code for r in opened]
        for response in opened:
            response.close()
        return codes == [200] * count

    wait_until(all_open, f"{count} stream slots to be free")


def test_malformed_websocket_handshakes_leave_the_slots_free(small_gunicorn):
    base, port = small_gunicorn.base, small_gunicorn.port
    for _ in range(3):
        sock = raw_request(
            port,
            (
                f"GET /api/v2/events/ws HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
                "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode(),
        )
        head, body = read_head(sock)
        assert head.startswith("HTTP/1.1 400")
        while b"}" not in body:
            body += sock.recv(4096)
        envelope = json.loads(body[body.index(b"{") :].decode())
        assert envelope["error"]["code"] == "VALIDATION_ERROR"
        assert "Sec-WebSocket-Version" in envelope["error"]["details"]
        sock.close()
    open_streams(base, 3)


def test_stalled_clients_are_hung_up_on_and_other_requests_keep_answering(small_gunicorn, nats):
    base, port = small_gunicorn.base, small_gunicorn.port
    stalled = [raw_request(port, stream_request(), rcvbuf=2048) for _ in range(8)]  # > 6 threads
    wait_until(
        lambda: len(select.select(stalled, [], [], 0)[0]) == len(stalled),
        "every stalled client's request to be answered (a stream or a 503)",
    )
    big = "x" * 8000
    for burst in range(40):  # 8 MB per stalled stream, more than the kernel buffers (4 MB)
        batch = [omni_message("message.received", n=burst * 25 + i) for i in range(25)]
        publish(nats.url, [{**message, "id": big + message["id"]} for message in batch])
        for path in ("/api/v2/health", "/api/v2/event-ops/metrics"):
            response = requests.get(base + path, headers={"x-api-key": API_KEY}, timeout=CEILING)
            assert response.status_code in (200, 503) and response.json()
        pace(0.05, "bursts a moment apart")
    pace(3, "the send timeout (2 s) passes with the streams' sockets full")
    statuses = []
    for sock in stalled:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # drain fast now
        head, _ = read_head(sock)
        statuses.append(head[9:12])
        if head.startswith("HTTP/1.1 200"):  # a stream: the server hung up already
            _, closed = read_to_end(sock, timeout=10)
            assert closed, "the server still holds a stalled stream after its send timeout"
        sock.close()
    assert sorted(statuses) == ["200"] * 3 + ["503"] * 5
    open_streams(small_gunicorn.base, 3)  # every slot was given back


def test_after_request_hooks_and_headers_apply_to_the_stream(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'hooks.db'}")

    @app.after_request
    def cors(response):
        response.headers["Access-Control-Allow-Origin"] = "https://dash.example"
        return response

    served = Served(app)
    try:
        response = requests.get(
            f"http://127.0.0.1:{served.port}{STREAM}",
            headers={"x-api-key": API_KEY},
            stream=True,
            timeout=5,
        )
        assert response.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        assert response.headers["Transfer-Encoding"] == "chunked" and "Date" in response.headers
        first = next(sseclient.SSEClient(response).events())
        assert first.event == "connected" and first.id and json.loads(first.data)
        response.close()
        head = requests.head(
            f"http://127.0.0.1:{served.port}{STREAM}", headers={"x-api-key": API_KEY}, timeout=5
        )
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Access-Control-Allow-Origin"] == "https://dash.example"
        hub = app.extensions["omni_dashboard"].live.hub()
        # The closed stream is noticed, and HEAD took no slot.
        wait_until(lambda: hub.clients == 0, "the closed stream to give its slot back")
    finally:
        app.extensions["omni_dashboard"].live.stop()
        served.close()


def test_a_client_moving_between_workers_loses_nothing_with_jetstream(tmp_path):
    """Two workers, streams that end every 300 ms, JetStream created by the plugin."""
    nats = NatsServer(tmp_path / "js")  # its own server: no stream exists before the plugin's
    nats.start()
    access_log = tmp_path / "access.log"
    server = Gunicorn(
        tmp_path,
        {
            "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.db'}",
            "OMNI_API_KEY": API_KEY,
            "OMNI_NATS_URL": nats.url,
            "OMNI_DASHBOARD_STREAM_JETSTREAM": "create",
            "OMNI_DASHBOARD_STREAM_LIFETIME_MS": 300,
            "WEB_CONCURRENCY": 2,
        },
        extra_args=("--access-logfile", str(access_log), "--access-logformat", "%(p)s %(r)s"),
    ).start()
    received, resets, last = [], [], None
    try:
        published = 0
        deadline = deadline_in()
        while not expired(deadline):
            headers = {"x-api-key": API_KEY, **({"Last-Event-ID": last} if last else {})}
            response = requests.get(server.base + STREAM, headers=headers, stream=True, timeout=10)
            assert response.status_code == 200
            for event in sseclient.SSEClient(response).events():
                if event.event == "connected":
                    assert json.loads(event.data)["mode"] == "jetstream"
                    if published < 100:  # publish while the client is on this worker
                        batch = [
                            omni_message("message.received", n=published + i) for i in range(5)
                        ]
                        publish(nats.url, batch)
                        published += 5
                elif event.event == "event.received":
                    received.append(json.loads(event.data)["id"])
                elif event.event == "reset":
                    resets.append(event.data)
                last = event.id or last
            response.close()
            if published >= 100 and len(received) >= 100:
                break
    finally:
        server.stop()
        nats.stop()
    assert resets == []
    assert received == [f"message.received-inst-1-{n}" for n in range(100)]
    workers = {line.split()[0] for line in access_log.read_text().splitlines() if STREAM in line}
    assert len(workers) == 2, f"the client stayed on one worker: {workers}"


def test_the_documented_gunicorn_logs_no_key(small_gunicorn):
    secret = "k3y-" + "s" * 20
    base = small_gunicorn.base
    requests.get(f"{base}/api/v2/health?api_key={secret}", timeout=5)
    requests.get(f"{base}/api/v2/dashboard?timezone=UTC&api_key={API_KEY}", timeout=5)
    requests.get(f"{base}/api/v2/dashboard", headers={"x-api-key": API_KEY}, timeout=5)
    requests.get(f"{base}//dashboard?api_key={secret}", timeout=5, allow_redirects=False)
    log = wait_until(  # gunicorn writes its access log as it goes
        lambda: (text := small_gunicorn.log.read_text()).count("/dashboard") >= 3 and text,
        "three dashboard requests in the access log",
    )
    assert "GET /api/v2/health?api_key=[REDACTED]" in log
    assert secret not in log and API_KEY not in log


@pytest.mark.parametrize("spare", [0, -1])
def test_nginx_needs_two_connections_per_stream_and_two_of_its_own(small_gunicorn, tmp_path, spare):
    """docs/live-feed.md: worker_connections >= 2 x streams + 2 (nothing else in flight)."""
    streams = 3
    nginx = Nginx(tmp_path, small_gunicorn.port, worker_connections=2 * streams + 2 + spare)
    nginx.start()
    opened, answers = [], []
    try:
        for _ in range(streams):
            try:
                response = requests.get(
                    nginx.base + STREAM, headers={"x-api-key": API_KEY}, stream=True, timeout=10
                )
                opened.append(response)
                answers.append(response.status_code)
            except requests.ConnectionError:
                answers.append(None)
    finally:
        for response in opened:
            response.close()
        nginx.stop()
    refused = "worker_connections are not enough" in (nginx.prefix / "error.log").read_text()
    if spare == 0:
        assert answers == [200] * streams and not refused
    else:
        assert answers[:-1] == [200] * (streams - 1) and answers[-1] != 200 and refused
    open_streams(small_gunicorn.base, streams)  # the slots came back
