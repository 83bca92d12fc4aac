"""Reads while the rollups are partial (a refresh killed midway) against rollups off, and a
refresh from scratch with one row from the year 2000, in one run (issue 32).

    python -m bench.partial_rollups --database-url postgresql://root@127.0.0.1/i32c_bench_10m \
        --events 10000000 --kill-after 20 --repeat 2 \
        --before-code /tmp/i32c/main_code --before-seconds 60 --write

Loads the database unless it holds exactly ``--events`` events (``bench.loader``, 90 days).
Then: drops the rollups and starts a refresh from scratch in a child process, killed
(SIGKILL) after ``--kill-after`` seconds (or once its first chunk committed, if later);
checks that rollups on and off answer alike, and times the dashboard, ``/event-ops/metrics``
and all-time analytics with rollups on (partial) and off, interleaved in one loop. Then
adds one event dated 2000-01-01 and times the first two chunks of a refresh from
scratch: the ancient day, then the empty days after it with the first loaded day (the
event is deleted again at the end). With
``--before-code`` (a directory holding an older ``omni_dashboard_plugin``, `git archive`
of a commit, say) the older code's refresh of that database runs for ``--before-seconds``
in a child process, killed then; its rate over the empty days after 2000-01-01 gives the
time it would take to walk them.
"""

import argparse
import json
import multiprocessing
import platform
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text

from host_example.db import make_engine
from omni_dashboard_plugin.grid import SLOTS_PER_DAY
from omni_dashboard_plugin.rollups.state import horizon_slot

from .harness import KEY, NOW, Call, bench_app, measure
from .loader import load
from .report import cell, publish
from .rollups import _body, _holds, ensure_database

ANCIENT = datetime(2000, 1, 1)
CALLS = [
    ("GET /api/v2/dashboard", "/api/v2/dashboard"),
    ("GET /event-ops/metrics", "/api/v2/event-ops/metrics"),
    ("GET /events/analytics?allTime=true", "/api/v2/events/analytics?allTime=true"),
]
# A child that refreshes with an older omni_dashboard_plugin (argv: code, url, horizon).
OLDER_REFRESH = """
import sys
editable = lambda f: getattr(f, "__module__", "").startswith("__editable__")
sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
sys.path.insert(0, sys.argv[1])
import omni_dashboard_plugin
assert omni_dashboard_plugin.__file__.startswith(sys.argv[1]), omni_dashboard_plugin.__file__
from bench.partial_rollups import refresh_from_scratch
refresh_from_scratch(sys.argv[2], int(sys.argv[3]), reset=False)
"""


def _on(url, horizon):
    return bench_app(
        url,
        OMNI_DASHBOARD_ROLLUPS="on",
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=horizon,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )


def refresh_from_scratch(url, horizon, reset=True):
    """Drop the rollups (unless told not to) and refresh them; the child's job."""
    rollups = _on(url, horizon).extensions["omni_dashboard"].rollups
    if reset:
        rollups.reset()
    rollups.refresh()


def _killed_after(seconds, start, until=lambda: True) -> float:
    """Run ``start()`` (a child process) and SIGKILL it after ``seconds``, or later when
    ``until()`` holds (checked every second); returns the seconds it ran."""
    began = time.perf_counter()
    child = start()
    time.sleep(seconds)
    while not until():
        time.sleep(1)
    child.kill()
    child.wait() if isinstance(child, subprocess.Popen) else child.join()
    return time.perf_counter() - began


def _watermark(engine):
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT start_slot, watermark_slot FROM omni_dashboard_r5_rollup_state "
                "WHERE name = 'all'"
            )
        ).first()
    return None if found is None else tuple(found)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--kill-after", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--horizon-minutes", type=int, default=30)
    parser.add_argument("--before-code", help="a directory holding an older omni_dashboard_plugin")
    parser.add_argument("--before-seconds", type=float, default=60.0)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    url, horizon = args.database_url, args.horizon_minutes
    ensure_database(url)
    engine = make_engine(url, statement_timeout_ms=0)
    if not _holds(engine, args.events):
        load(engine, args.events, max(args.events // 10, 1), args.days, NOW)
    on, off = _on(url, horizon), bench_app(url, OMNI_DASHBOARD_CACHE_SECONDS=0)
    rollups = on.extensions["omni_dashboard"].rollups
    rollups.install()

    # Partial rollups: a refresh from scratch killed after --kill-after seconds.
    spawn = multiprocessing.get_context("spawn")

    def start():
        child = spawn.Process(target=refresh_from_scratch, args=(url, horizon))
        child.start()
        return child

    # On a loaded machine a chunk (a day of events) may take longer than --kill-after.
    ran = _killed_after(args.kill_after, start, lambda: _watermark(engine) is not None)
    start_slot, mark = _watermark(engine)
    target = horizon_slot(NOW, timedelta(minutes=horizon))
    rolled = (mark - start_slot) / (target - start_slot)
    for _, path in CALLS:
        if _body(on, path) != _body(off, path):
            raise SystemExit(f"rollups on (partial) and off differ on {path}")
    calls = [
        Call(f"{label} {state}", app, path)
        for label, path in CALLS
        for state, app in (("partial", on), ("off", off))
    ]
    timed = measure(calls, args.repeat, KEY, warmup=1)

    print(json.dumps({"ran": ran, "rolled": rolled, "timed": timed}), flush=True)

    # One event from 2000-01-01: what rolling it and the empty days after it costs (the
    # first two chunks of a refresh from scratch), now and before.
    loaded = _oldest(engine)
    first_day = datetime(loaded.year, loaded.month, loaded.day)
    ancient_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO omni_events (id, channel, event_type, direction, status, "
                "received_at) VALUES (:id, 'discord', 'message.received', 'inbound', "
                "'completed', :at)"
            ),
            {"id": ancient_id, "at": ANCIENT},
        )
    try:
        rollups.reset()
        started = time.perf_counter()
        report = rollups.refresh(max_chunks=2)
        ancient, ancient_chunks = time.perf_counter() - started, report.chunks
        reached = report.watermark
        print(json.dumps({"ancient": ancient, "reached": str(reached)}), flush=True)
        before = None
        if args.before_code:
            rollups.reset()
            command = [sys.executable, "-c", OLDER_REFRESH, args.before_code, url, str(horizon)]
            _killed_after(args.before_seconds, lambda: subprocess.Popen(command))
            first, walked = _watermark(engine)
            before = (walked - first) / SLOTS_PER_DAY / args.before_seconds  # days a second
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM omni_events WHERE id = :id"), {"id": ancient_id})
        rollups.reset()
    gap_days = (first_day - ANCIENT).days

    lines = [
        f"{args.events:,} events over {args.days} days (automation logs = events / 10); "
        f"PostgreSQL 15, {platform.machine()}, 2 cores shared with other jobs; Flask test "
        f"client in-process, cache off; {args.repeat} requests per call after one warm-up, "
        "partial and off interleaved in one loop. The refresh from scratch was killed "
        f"(SIGKILL) after {ran:.0f} s with {rolled:.0%} of the slots rolled "
        "(oldest first); responses with partial rollups and rollups off were compared first: "
        "equal.",
        "",
        "| call | partial rollups p50 / p95 (ms) | rollups off p50 / p95 (ms) "
        "| partial / off (p50) |",
        "|---|---:|---:|---:|",
    ]
    for label, _ in CALLS:
        partial, raw = timed[f"{label} partial"], timed[f"{label} off"]
        ratio = partial["p50"] / raw["p50"]
        lines.append(f"| {label} | {cell(partial)} | {cell(raw)} | {ratio:.2f} |")
    lines += [
        "",
        f"- one event dated {ANCIENT:%Y-%m-%d} added: the first {ancient_chunks} chunks of a "
        f"refresh from scratch, its day, then the {gap_days:,} empty days together with the "
        f"first loaded day (to {reached:%Y-%m-%d %H:%M}), took {ancient:.1f} s; the rest is "
        "the refresh of the data as loaded",
    ]
    if before is not None:
        lines.append(
            f"- the code before (`--before-code`) walked {before:.1f} empty days a second over "
            f"the same gap: {gap_days / before / 60:.0f} minutes for its {gap_days:,} days "
            f"(measured for {args.before_seconds:.0f} s, extrapolated)"
        )
    publish("partial-rollups", lines, args.write)


def _oldest(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT min(received_at) FROM omni_events")).scalar()


if __name__ == "__main__":
    main()
