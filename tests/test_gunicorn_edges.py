"""What the documented gunicorn deployment answers and logs by itself: no API key reaches its
access log however the request spells it, and requests over the app's size limits get the
app's envelope, because gunicorn's own limits (which answer in HTML) sit above them; and its
workers freeze the heap the app loaded."""

import gc
import json
import runpy
import secrets
import socket
import types

import pytest
import requests
from gunicorn.config import Config

from .conftest import build_app
from .deploy_support import ROOT, Gunicorn
from .waiting import wait_until

pytestmark = pytest.mark.slow  # gunicorn

SECRET = "k3y-" + secrets.token_hex(12)
CONF = runpy.run_path(str(ROOT / "host_example" / "gunicorn.conf.py"))
# Every atom that can carry the key: request line, path, query, referer, header, environ.
LOG_FORMAT = "%(r)s | %(U)s | %(q)s | %(f)s | %({x-api-key}i)s | %({http_x_api_key}e)s | %(s)s"


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("edges")
    settings = {
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'edges.db'}",
        "OMNI_API_KEY": SECRET,
        "WEB_CONCURRENCY": 1,
    }
    server = Gunicorn(tmp_path, settings, extra_args=("--access-logformat", LOG_FORMAT)).start()
    yield server
    server.stop()


def logged(server: Gunicorn, markers: list[str]) -> str:
    """gunicorn's log once every marker is in it (it writes the access log as it goes)."""

    def complete() -> str | None:
        log = server.log.read_text()
        return log if all(marker in log for marker in markers) else None

    return wait_until(complete, f"gunicorn to log {markers}")


def test_no_spelling_of_the_key_reaches_the_access_log(gunicorn):
    base = gunicorn.base
    spellings = ["api_key", "api%5Fkey", "api%5fkey", "%61pi%5Fkey", "API_KEY", "api%255Fkey"]
    for n, name in enumerate(spellings):
        response = requests.get(f"{base}/api/v2/dead-letters/stats?n={n}&{name}={SECRET}")
        # werkzeug decodes argument names once: these spellings are the key itself
        assert response.status_code == (200 if n < 4 else 401), name
    referers = [
        f"https://dash.example/dashboard?api%5fkey={SECRET}",
        f"https://dash.example/?next=%2Fdashboard%3Fapi%255Fkey%3D{SECRET}",
    ]
    for n, referer in enumerate(referers):
        requests.get(f"{base}/api/v2/health?r={n}", headers={"Referer": referer}, timeout=5)
    requests.get(f"{base}/api/v2/dashboard?h=1", headers={"x-api-key": SECRET}, timeout=5)
    markers = [f"n={n}&" for n in range(len(spellings))] + ["?r=0", "?r=1", "?h=1"]
    log = logged(gunicorn, markers)
    assert all(marker in log for marker in markers), log
    assert SECRET not in log
    assert log.count("[REDACTED]") >= 2 * len(spellings) + len(referers) + 2


def raw_exchange(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send ``request``; the status, head and body of the answer (read until the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


def get(path: str, headers: dict | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_envelope(answer: tuple[int, str, bytes], status: int, code: str) -> None:
    got, head, body = answer
    assert got == status, head
    assert "application/json" in head.lower(), head
    assert json.loads(body)["error"]["code"] == code


def gunicorn_setting(name: str) -> int:
    """A setting as the documented configuration leaves it (gunicorn's default if unset)."""
    return CONF.get(name, Config().settings[name].get())


def test_requests_over_the_apps_limits_get_its_envelope_from_gunicorn(gunicorn, tmp_path):
    config = build_app(f"sqlite:///{tmp_path / 'limits.db'}").config
    max_url, max_headers = config["OMNI_MAX_URL_LENGTH"], config["OMNI_MAX_HEADER_BYTES"]
    line = gunicorn_setting("limit_request_line")
    field = gunicorn_setting("limit_request_field_size")
    port = gunicorn.port
    fits = "/api/v2/health?pad=" + "a" * (max_url - len("/api/v2/health?pad="))
    assert raw_exchange(port, get(fits))[0] == 200
    longest = line - len("GET  HTTP/1.1")
    for length in (max_url + 1, longest):
        target = "/api/v2/health?pad=" + "a" * (length - len("/api/v2/health?pad="))
        assert_envelope(raw_exchange(port, get(target)), 414, "URI_TOO_LONG")
    largest = field - len("X-Pad: \r\n")
    for size in (max_headers, largest):
        answer = raw_exchange(port, get("/api/v2/health", {"X-Pad": "b" * size}))
        assert_envelope(answer, 431, "HEADERS_TOO_LARGE")
    many = {f"X-Pad-{n}": "c" * 400 for n in range(max_headers // 400 + 1)}
    assert len(many) < gunicorn_setting("limit_request_fields")
    assert_envelope(raw_exchange(port, get("/api/v2/health", many)), 431, "HEADERS_TOO_LARGE")
    with_key = get("/api/v2/dead-letters/stats", {"x-api-key": SECRET, "X-Pad": "d" * 8000})
    assert raw_exchange(port, with_key)[0] == 200  # a large header below the limit is served
    # whatever the method (gunicorn takes up to 20 letters), a URL the app refuses fits
    # gunicorn's request line, and a header line the app refuses fits gunicorn's field size
    assert max_url + len("X" * 20 + "  HTTP/1.1") < line
    assert max_headers < field


def test_a_worker_freezes_the_heap_its_app_loaded():
    """The documented ``post_worker_init`` moves the loaded app out of the collector's
    reach (docs/host-integration.md), so full collections walk only what requests add."""
    gc.unfreeze()
    worker = types.SimpleNamespace(wsgi=object())  # an app without the live feed
    try:
        CONF["post_worker_init"](worker)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
