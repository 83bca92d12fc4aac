"""Where one call's time goes under bench.steady's single-row ingest: each statement's.

    python -m bench.statements --database-url postgresql://root@127.0.0.1/omni_steady_1m \
        --seconds 60

On a database that ``bench.steady --load`` loaded, pgbench writers and the refresh run as in
``bench.steady --single-row-writers`` while the call (the plain dashboard unless ``--path``
says otherwise) is made back to back through Flask's test client, rollups on, the heap
frozen once the app is loaded (as in ``bench.steady``). Each
statement the app runs is timed from SQLAlchemy's cursor events. Reported: the call's wall
time, the sum of its statements' and the rest (the app's process: Flask, SQLAlchemy,
psycopg2, the plugin's Python), p50 and p99; how long Python's garbage collector ran
within the calls; then each statement, by its position in the
call, p50, p90 and p99. Nothing is written to docs/: a diagnosis, not a bench of record.
"""

import argparse
import gc
import time
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import event

from .harness import KEY, bench_app, freeze_loaded_heap, percentile
from .steady import PgbenchWriters, Refresher, RunningClock, database_clock

WARM_UP = 5  # seconds of ingest before the first timed call


def _timed_statements(engine) -> list[tuple[float, str]]:
    """A list that collects (milliseconds, statement's start) of every statement run on
    ``engine`` from now on; the caller clears it between calls."""
    found: list[tuple[float, str]] = []
    started: dict[int, float] = {}

    def before(conn, cursor, statement, *args):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, *args):
        elapsed = (time.perf_counter() - started.pop(id(cursor))) * 1000
        found.append((elapsed, " ".join(statement.split())[:70]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    return found


def _timed_collections() -> list[tuple[int, float]]:
    """A list that collects (generation, milliseconds) of every collection of Python's
    garbage collector from now on; the caller clears it between calls."""
    found: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            found.append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    gc.callbacks.append(timed)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--path", default="/api/v2/dashboard")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--single-row-writers", type=int, default=16)
    parser.add_argument("--refresh-seconds", type=float, default=1)
    parser.add_argument("--horizon-minutes", type=int, default=30)
    parser.add_argument("--tail-margin-seconds", type=int, default=2)
    args = parser.parse_args(argv)

    url = args.database_url
    clock = RunningClock(database_clock(url))
    app = bench_app(
        url,
        OMNI_CLOCK=clock,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
        OMNI_DASHBOARD_ROLLUPS="on",
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=args.horizon_minutes,
        OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS=args.tail_margin_seconds,
    )
    freeze_loaded_heap()  # as the reference host's workers do once the app is loaded
    client = app.test_client()
    for _ in range(WARM_UP):  # each endpoint learns its sources on its first call
        client.get(args.path, headers={"x-api-key": KEY})
    statements = _timed_statements(app.extensions["omni_host"].engine)
    collections = _timed_collections()
    began = time.monotonic()
    ends = began + args.seconds
    writers = PgbenchWriters(url, clock, args.rate, args.single_row_writers, 1e9, ends=ends)
    horizon = timedelta(minutes=args.horizon_minutes)
    refresher = Refresher(url, clock, horizon, args.refresh_seconds)
    calls: list[tuple[float, float, float]] = []  # (wall, statements', collections') ms
    by_position: dict[tuple[int, str], list[float]] = defaultdict(list)
    writers.start()
    refresher.start()
    try:
        time.sleep(WARM_UP)
        while time.monotonic() < ends - 2:
            statements.clear()
            collections.clear()
            started = time.perf_counter()
            response = client.get(args.path, headers={"x-api-key": KEY})
            wall = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{args.path}: HTTP {response.status_code}")
            calls.append((wall, sum(ms for ms, _ in statements), sum(ms for _, ms in collections)))
            for position, (ms, text) in enumerate(statements):
                by_position[(position, text)].append(ms)
            time.sleep(0.05)
    finally:
        refresher.finish()
        writers.finish()

    def quantiles(samples, *qs):
        return " / ".join(f"{percentile(samples, q):.1f}" for q in qs)

    walls, sums = [w for w, _, _ in calls], [s for _, s, _ in calls]
    rest = [w - s for w, s, _ in calls]
    collected = [c for _, _, c in calls]
    print(f"{args.path}: {len(calls)} calls under {writers.total('written'):,} events written")
    print(f"wall p50 / p99 {quantiles(walls, 0.5, 0.99)} ms")
    print(f"statements {quantiles(sums, 0.5, 0.99)} ms, the rest {quantiles(rest, 0.5, 0.99)} ms")
    slowest = sorted(calls, reverse=True)[: max(1, len(calls) // 100)]
    print(
        f"Python's garbage collector: {quantiles(collected, 0.5, 0.99)} ms a call, "
        f"{max(collected):.1f} at most; it ran in {sum(c > 0 for c in collected)} calls, "
        f"{sum(c > 0 for *_, c in slowest)} of the slowest {len(slowest)}"
    )
    print("statement (position, start): p50 / p90 / p99 ms, calls")
    for (position, text), samples in sorted(by_position.items()):
        print(f"{position:2d} {text:70s} {quantiles(samples, 0.5, 0.9, 0.99)}, {len(samples)}")


if __name__ == "__main__":
    main()
