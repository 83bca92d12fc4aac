"""How soon the deadlines the tests only assert the outcome of are met (issue 30): the tests
wait for a 503, a freed slot, an event, with a ceiling that only catches hangs; this script
measures the latency, each figure next to the deadline it is held to, in one run.

    OMNI_BENCH_PG_URL=postgresql://root@127.0.0.1/postgres python -m bench.deadlines --write

- ``stuck peer``: the database behind a relay that stops forwarding (tests/test_stuck_database.py);
  one GET /api/v2/dashboard on a warm pool, until its 503; deadline OMNI_DB_TIMEOUT_MS.
- ``locked table``: omni_events locked by another session; the dashboard's 503 under
  OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS.
- ``SSE connected`` / ``SSE event``: the reference host under werkzeug with a nats-server;
  a ``requests`` stream's ``connected`` event after the request, and a published event's
  arrival after its publish (tests/test_live_clients.py asserts only that they come).
- ``/health, NATS silent``: /health with a NATS that accepts and never speaks (one call).

The WebSocket slot's freeing and a stalled client's drop are measured by bench/live_endings.py.
"""

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import API_KEY, build_app
from tests.live_support import NatsServer, Served, omni_message, publish
from tests.test_stuck_database import relay_to

from .report import publish as publish_section

TIMEOUT_MS = 4000
STATEMENT_TIMEOUT_MS = 500
DASHBOARD = "/api/v2/dashboard"


def timed_get(client, path: str) -> tuple[float, object]:
    """(seconds, response) of one GET with the key through ``client``."""
    began = time.perf_counter()
    response = client.get(path, headers={"x-api-key": API_KEY})
    return time.perf_counter() - began, response


def stuck_peer(pg_url: str, repeat: int) -> list[float]:
    """Seconds until a warm pool's dashboard request gives 503 with the relay stopped."""
    samples = []
    for _ in range(repeat):
        relay = relay_to(pg_url)
        app = build_app(
            relay.url(pg_url), OMNI_DB_TIMEOUT_MS=TIMEOUT_MS, OMNI_DASHBOARD_CACHE_SECONDS=0
        )
        client = app.test_client()
        try:
            assert client.get(DASHBOARD, headers={"x-api-key": API_KEY}).status_code == 200
            relay.stop()
            took, response = timed_get(client, DASHBOARD)
            assert response.status_code == 503, response.get_data(as_text=True)
            samples.append(took)
        finally:
            relay.close()
            app.extensions["omni_dashboard"].live.stop()
            app.extensions["omni_host"].engine.dispose()
    return samples


def locked_table(pg_url: str, repeat: int) -> list[float]:
    """Seconds until the dashboard gives 503 on a table another session locked."""
    app = build_app(
        pg_url,
        OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS=STATEMENT_TIMEOUT_MS,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )
    client = app.test_client()
    assert client.get(DASHBOARD, headers={"x-api-key": API_KEY}).status_code == 200
    locker = create_engine(pg_url)
    samples = []
    try:
        for _ in range(repeat):
            with locker.connect() as conn:
                conn.execute(text("LOCK TABLE omni_events IN ACCESS EXCLUSIVE MODE"))
                took, response = timed_get(client, DASHBOARD)
                conn.rollback()
            assert response.status_code == 503
            samples.append(took)
    finally:
        locker.dispose()
        app.extensions["omni_host"].engine.dispose()
    return samples


def live_feed(tmp: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """(connected, event, /health with NATS silent) seconds."""
    nats = NatsServer(tmp / "nats")
    nats.start()
    app = build_app(
        f"sqlite:///{tmp / 'feed.db'}", OMNI_NATS_URL=nats.url, OMNI_DASHBOARD_STREAM_HEARTBEAT=1
    )
    served = Served(app)
    connected, delivered = [], []
    try:
        for n in range(repeat):
            began = time.perf_counter()
            status, reader, hangup = served.stream("/api/v2/events/stream", key=API_KEY)
            assert status == 200 and reader.next()["event"] == "connected"
            connected.append(time.perf_counter() - began)
            message = omni_message("message.received", n=n)
            sent = time.perf_counter()
            publish(nats.url, [message])
            event = reader.take(1, name="event.received")[0]
            assert event["data"]["id"] == message["id"]
            delivered.append(time.perf_counter() - sent)
            hangup.close()
    finally:
        app.extensions["omni_dashboard"].live.stop()
        served.close()
        nats.stop()
    return connected, delivered, silent_nats_health(tmp, repeat)


def silent_nats_health(tmp: Path, repeat: int) -> list[float]:
    silent = socket.socket()  # listens, never accepts
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
    app = build_app(f"sqlite:///{tmp / 'health.db'}", OMNI_NATS_URL=url, OMNI_HEALTH_NATS_TTL=0)
    client = app.test_client()
    samples = []
    try:
        for _ in range(repeat):
            took, response = timed_get(client, "/api/v2/health")
            assert response.status_code == 503
            samples.append(took)
    finally:
        app.extensions["omni_dashboard"].live.stop()
        silent.close()
    return samples


def row(label: str, samples: list[float], deadline: float | None) -> str:
    median, worst = statistics.median(samples), max(samples)
    limit = f"{deadline * 1000:.0f}" if deadline else "none"
    ratio = f"{median / deadline:.2f}" if deadline else "-"
    return f"| {label} | {median * 1000:.1f} | {worst * 1000:.1f} | {limit} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write docs/performance.md")
    args = parser.parse_args()
    pg_url = os.environ.get("OMNI_BENCH_PG_URL", "postgresql://root@127.0.0.1/postgres")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        database = f"omni_deadlines_{os.getpid()}"
        with scratch.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = pg_url.rsplit("/", 1)[0] + f"/{database}"
        try:
            stuck = stuck_peer(url, args.repeat)
            locked = locked_table(url, args.repeat)
            connected, delivered, health = live_feed(Path(tmp), args.repeat)
        finally:
            with scratch.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            scratch.dispose()
    lines = [
        f"{args.repeat} runs each; median and worst in ms, the deadline each is held to, and "
        "the median's share of it.",
        "",
        "| case | median | worst | deadline | median / deadline |",
        "|---|---:|---:|---:|---:|",
        row("stuck peer: dashboard 503", stuck, TIMEOUT_MS / 1000),
        row("locked table: dashboard 503", locked, STATEMENT_TIMEOUT_MS / 1000),
        row("SSE `connected` after the request", connected, None),
        row("SSE event after its publish", delivered, None),
        row("/health with NATS silent", health, None),
    ]
    publish_section("deadlines", lines, args.write)


if __name__ == "__main__":
    main()
