"""A database that stops answering gives 503 envelopes within the configured time, never a
hung thread: a link that drops every packet (a relay behind an nftables DROP rule), and a
table locked by another session (the plugin's statement timeout)."""

import contextlib
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .conftest import API_KEY, IN_CI, build_app
from .live_support import Served, free_port

TIMEOUT_MS = 4000  # the least that splits into libpq's whole seconds: 2 s + 2 s
ROUTES = (
    "/api/v2/event-ops/metrics",
    "/api/v2/events/analytics",
    "/api/v2/dead-letters/stats",
    "/api/v2/automation-metrics",
    "/api/v2/automation-logs",
    "/api/v2/dashboard",
    "/api/v2/health",
)


class Relay:
    """A TCP relay to PostgreSQL on a port of its own, so that a rule can blackhole it."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self):
        self.listener.close()


@contextlib.contextmanager
def packets_dropped(port: int):
    """Every packet to ``port`` on this machine is dropped (nftables) while inside."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin")
    if nft is None:
        if IN_CI:
            pytest.fail("CI=true: nft (Debian package nftables) is needed")
        pytest.skip("nft (Debian package nftables) is not installed")
    table = f"omni_blackhole_{port}"
    rules = (
        f"table inet {table} {{\n  chain input {{\n"
        f"    type filter hook input priority -10;\n    tcp dport {port} drop\n  }}\n}}\n"
    )
    added = subprocess.run([nft, "-f", "-"], input=rules, text=True, capture_output=True)
    if added.returncode != 0:
        if IN_CI:
            pytest.fail(f"CI=true: nft refused the rule: {added.stderr}")
        pytest.skip(f"nft refused the rule: {added.stderr}")
    try:
        yield
    finally:
        subprocess.run([nft, "delete", "table", "inet", table], check=False)


def ask(base: str, path: str, results: dict) -> None:
    began = time.monotonic()
    try:
        response = requests.get(base + path, headers={"x-api-key": API_KEY}, timeout=30)
        results[path] = (response.status_code, response.json(), time.monotonic() - began)
    except requests.RequestException as exc:
        results[path] = (None, str(exc), time.monotonic() - began)


def test_a_blackholed_database_link_gives_503_on_every_route(pg_url):
    url = make_url(pg_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    app = build_app(
        url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False),
        OMNI_DB_TIMEOUT_MS=TIMEOUT_MS,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )
    served = Served(app)
    base = f"http://127.0.0.1:{served.port}"
    try:
        warm: dict = {}
        for path in ROUTES:  # every route works, and the pool holds open connections
            ask(base, path, warm)
        assert all(status == 200 for status, _, _ in warm.values()), warm
        with packets_dropped(relay.port):
            results: dict = {}
            threads = [threading.Thread(target=ask, args=(base, p, results)) for p in ROUTES]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        for path, (status, body, took) in results.items():
            assert status == 503, (path, status, body)
            assert (
                body["error"]["code"] == "SERVICE_UNAVAILABLE"
                if path != ROUTES[-1]
                else (body["checks"]["database"]["status"] == "error")
            )
            # a pooled connection fails after half the timeout (TCP notices at its next
            # retransmission: up to 0.5 s later), a fresh one in the rest: 2.0-4.5 s measured
            assert took < TIMEOUT_MS / 1000 + 1.5, (path, took)
    finally:
        served.close()
        relay.close()
        app.extensions["omni_host"].engine.dispose()


def test_the_plugins_reads_stop_at_their_statement_timeout(pg_url):
    app = build_app(pg_url, OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS=500, OMNI_DASHBOARD_CACHE_SECONDS=0)
    client = app.test_client()
    assert client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY}).status_code == 200
    locker = create_engine(pg_url)
    with locker.connect() as conn:
        conn.execute(text("LOCK TABLE omni_events IN ACCESS EXCLUSIVE MODE"))  # held until rollback
        began = time.monotonic()
        response = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY})
        took = time.monotonic() - began
        conn.rollback()
    locker.dispose()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert took < 2.0, f"the dashboard waited {took:.1f} s on a locked table"
