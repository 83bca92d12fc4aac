"""A database that stops answering gives 503 envelopes, never a hung thread: a peer that
acknowledges every packet and never answers (a loopback relay that stops forwarding and keeps
its sockets open: no root, no firewall), a link that drops every packet (the relay behind an
nftables DROP rule), and a table locked by another session (the plugin's statement timeout).
A slow statement is not a stuck one. How soon the 503 comes is measured by
bench/deadlines.py (docs/performance.md), not asserted here."""

import contextlib
import shutil
import socket
import subprocess
import threading

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from omni_dashboard_plugin.sql.deadline import guard_engine

from .conftest import API_KEY, IN_CI, build_app
from .live_support import Served, free_port
from .waiting import CEILING, finishes, wait_until

TIMEOUT_MS = 4000
ROUTES = (
    "/api/v2/event-ops/metrics",
    "/api/v2/events/analytics",
    "/api/v2/dead-letters/stats",
    "/api/v2/automation-metrics",
    "/api/v2/automation-logs",
    "/api/v2/dashboard",
    "/api/v2/dashboard/metrics",
    "/api/v2/health",
)


class Flow:
    """One relayed connection; it forwards while ``flowing`` is set, and the server's
    side while ``answering`` is set too."""

    def __init__(self):
        self.flowing = threading.Event()
        self.flowing.set()
        self.answering = threading.Event()
        self.answering.set()


class Relay:
    """A TCP relay to PostgreSQL on a port of its own, which can stop forwarding (every
    connection, or one) while its sockets stay open: the kernel goes on acknowledging,
    nothing reaches either side."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.accepting = threading.Event()  # new connections are relayed
        self.accepting.set()
        self.flows: list[Flow] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            flow = Flow()
            if not self.accepting.is_set():
                flow.flowing.clear()
            self.flows.append(flow)
            threading.Thread(target=self._relay, args=(client, flow), daemon=True).start()

    def _relay(self, client, flow):
        flow.flowing.wait()
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        for a, b, gates in ((client, upstream, ()), (upstream, client, (flow.answering,))):
            gates = (flow.flowing, *gates)
            threading.Thread(target=self._pump, args=(a, b, gates), daemon=True).start()

    @staticmethod
    def _pump(source, sink, gates):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                for gate in gates:
                    gate.wait()
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self):
        """Forward nothing more, on any connection, open or new."""
        self.accepting.clear()
        for flow in self.flows:
            flow.flowing.clear()

    def resume(self):
        self.accepting.set()
        for flow in self.flows:
            flow.flowing.set()
            flow.answering.set()

    def url(self, pg_url: str) -> str:
        return (
            make_url(pg_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def close(self):
        self.resume()
        self.listener.close()


def relay_to(pg_url: str) -> Relay:
    url = make_url(pg_url)
    return Relay((url.host or "127.0.0.1", url.port or 5432))


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
    try:  # a request still unanswered after its timeout hung: it fails the test
        response = requests.get(base + path, headers={"x-api-key": API_KEY}, timeout=CEILING)
        json = response.headers["Content-Type"].startswith("application/json")
        body = response.json() if json else response.text
        results[path] = (response.status_code, body)
    except requests.RequestException as exc:
        results[path] = (None, str(exc))


def ask_all(base: str) -> dict:
    """Every route at once: {path: (status, body)}."""
    results: dict = {}
    threads = [threading.Thread(target=ask, args=(base, p, results)) for p in ROUTES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_unavailable(results: dict) -> None:
    """503 with the envelope (with a degraded report on /health) on every route. How soon
    it comes is measured by bench/deadlines.py, not asserted here."""
    assert set(results) == set(ROUTES)
    for path, (status, body) in results.items():
        assert status == 503, (path, status, body)
        if path.endswith("/health"):
            assert body["checks"]["database"]["status"] == "error"
        else:
            assert body["error"]["code"] == "SERVICE_UNAVAILABLE", (path, body)


@contextlib.contextmanager
def served_over(relay: Relay, pg_url: str):
    app = build_app(
        relay.url(pg_url), OMNI_DB_TIMEOUT_MS=TIMEOUT_MS, OMNI_DASHBOARD_CACHE_SECONDS=0
    )
    served = Served(app)
    try:
        yield f"http://127.0.0.1:{served.port}"
    finally:
        served.close()
        app.extensions["omni_dashboard"].live.stop()
        app.extensions["omni_host"].engine.dispose()


def wait_until_every_route_answers(base: str) -> None:
    wait_until(
        lambda: all(status == 200 for status, _ in ask_all(base).values()),
        "every route to answer 200 again",
    )


@pytest.mark.slow  # a relay whose 4 s deadline is waited out
def test_a_peer_that_acknowledges_and_never_answers_gives_503(pg_url):
    relay = relay_to(pg_url)
    try:
        with served_over(relay, pg_url) as pooled, served_over(relay, pg_url) as fresh:
            warm = ask_all(pooled)  # every route works; the pool holds open connections
            assert all(status == 200 for status, _ in warm.values()), warm
            relay.stop()
            assert_unavailable(ask_all(pooled))
            assert_unavailable(ask_all(fresh))  # its first connections, ever
            relay.resume()
            wait_until_every_route_answers(pooled)
            wait_until_every_route_answers(fresh)
    finally:
        relay.close()


def guarded_engine(url: str):
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    guard_engine(engine, TIMEOUT_MS)
    return engine


@pytest.mark.slow  # a relay whose 4 s deadline is waited out
def test_a_statement_longer_than_the_timeout_is_slow_not_stuck(pg_url):
    relay = relay_to(pg_url)
    engine = guarded_engine(relay.url(pg_url))
    try:
        with engine.connect() as conn:
            seconds = TIMEOUT_MS / 1000 * 1.5
            assert conn.execute(text(f"SELECT pg_sleep({seconds}), 7")).one()[1] == 7
    finally:
        engine.dispose()
        relay.close()


@pytest.mark.slow  # a relay whose 4 s deadline is waited out
def test_one_stuck_connection_ends_alone(pg_url):
    """A connection whose relay stops (its backend idle, the server answering others) ends
    within the timeout; the others, and new ones, go on."""
    relay = relay_to(pg_url)
    engine = guarded_engine(relay.url(pg_url))
    try:
        with engine.connect() as stuck, engine.connect() as other:
            stuck.execute(text("SELECT 1"))
            other.execute(text("SELECT 1"))
            relay.flows[0].flowing.clear()
            with pytest.raises(sa_exc.OperationalError) as failed:
                finishes(lambda: stuck.execute(text("SELECT 2")), "the stuck call to end")
            assert failed.value.connection_invalidated
            assert other.execute(text("SELECT 3")).scalar() == 3
        with engine.connect() as new:
            assert new.execute(text("SELECT 4")).scalar() == 4
    finally:
        engine.dispose()
        relay.close()


@pytest.mark.slow  # a relay whose 4 s deadline is waited out
def test_an_answer_that_never_arrives_ends_the_call(pg_url):
    """The server ran the statement and waits to send more than the buffers hold (its
    backend active, blocked writing): the call ends within the timeout all the same."""
    relay = relay_to(pg_url)
    engine = guarded_engine(relay.url(pg_url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            relay.flows[0].answering.clear()
            with pytest.raises(sa_exc.OperationalError):
                finishes(
                    lambda: conn.execute(text("SELECT repeat('x', 50000000)")),
                    "the call whose answer never arrives to end",
                )
    finally:
        engine.dispose()
        relay.close()


@pytest.mark.slow  # nft, and a 4 s deadline waited out
def test_a_blackholed_database_link_gives_503_on_every_route(pg_url):
    relay = relay_to(pg_url)
    try:
        with served_over(relay, pg_url) as base:
            warm = ask_all(base)  # every route works, and the pool holds open connections
            assert all(status == 200 for status, _ in warm.values()), warm
            with packets_dropped(relay.port):
                assert_unavailable(ask_all(base))
    finally:
        relay.close()


def test_the_plugins_reads_stop_at_their_statement_timeout(pg_url):
    app = build_app(pg_url, OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS=500, OMNI_DASHBOARD_CACHE_SECONDS=0)
    client = app.test_client()
    assert client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY}).status_code == 200
    locker = create_engine(pg_url)
    with locker.connect() as conn:
        conn.execute(text("LOCK TABLE omni_events IN ACCESS EXCLUSIVE MODE"))  # held until rollback
        response = finishes(
            lambda: client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY}),
            "the dashboard to give up on the locked table",
        )
        conn.rollback()
    locker.dispose()
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
