"""Rollups on against rollups off, at several table sizes, in one run.

    python -m bench.rollups --database-url 'postgresql://root@127.0.0.1/omni_bench_{size}' \
        --sizes 1000000,10000000 --reuse --write

``{size}`` in the URL gives each size its own database; ``--reuse`` keeps a database that
already holds exactly that many events instead of loading it again, ``--keep-rollups``
catches up the rollups an earlier run left instead of refreshing from scratch (at 100M a
refresh from scratch takes 7 to 19 minutes), and ``--off-sizes`` names the sizes whose
rollups-off calls are timed (one raw /event-ops/metrics takes about a minute at 100M; every
size is still compared on against off first).

For each size: loads the events (automation logs = events / 10, dead letters, payloads),
times one full refresh from scratch and checks that both apps answer alike. Then it times
GET /api/v2/dashboard (cache off; also narrowed to an instance and compared with the
previous period), GET /event-ops/metrics, GET /events/analytics over 7 days narrowed to a
channel and compared, GET /automation-metrics and one Prometheus scrape in two phases:
with rollups on, the calls of every size interleaved (so
that the ratio of two sizes sees the same machine noise), then with rollups off, likewise
(their full scans would otherwise evict the pages the rollup reads keep warm, which no
server with rollups on does between two dashboard requests). The raw tail is the last 30
to 45 minutes with the default horizon (``--horizon-minutes``).
"""

import json
import platform
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from host_example.db import make_engine
from omni_dashboard_plugin.rollups.kinds import metadata as rollup_metadata

from .harness import KEY, NOW, Call, bench_app, measure, percentile, sized_parser
from .loader import load
from .report import cell, publish

# One of the loader's ten instances, one of its five channels.
INSTANCE = "00000000-0000-0000-0000-000000000001"


def calls(now) -> list[tuple[str, str]]:
    """The timed calls, (label, URL), the analytics reaching a week before ``now``."""
    week_ago = (now - timedelta(days=7)).isoformat() + "Z"
    return [
        ("GET /api/v2/dashboard", "/api/v2/dashboard"),
        ("GET /event-ops/metrics", "/api/v2/event-ops/metrics"),
        (
            "GET /api/v2/dashboard?instanceId=…&compare=previous_period",
            f"/api/v2/dashboard?instanceId={INSTANCE}&compare=previous_period",
        ),
        (
            "GET /events/analytics?since=<7 d ago>&channel=discord&compare=previous_period",
            f"/api/v2/events/analytics?since={week_ago}&channel=discord&compare=previous_period",
        ),
        ("GET /automation-metrics", "/api/v2/automation-metrics"),
        ("GET /api/v2/dashboard/metrics (one scrape)", "/api/v2/dashboard/metrics"),
    ]


CALLS = calls(NOW)
# The calls whose ratio of sizes the report states.
RATIOS = CALLS[:4]


def _body(app, url):
    response = app.test_client().get(url, headers={"x-api-key": KEY})
    if response.mimetype == "text/plain":  # a scrape: Omni's families (not the process's)
        lines = response.get_data(as_text=True).splitlines()
        return [
            line for line in lines if line.startswith("omni_") and "omni_dashboard_" not in line
        ]
    data = response.get_json()
    data.pop("system", None)  # measured latency and uptime differ between two calls
    return json.dumps(data, sort_keys=True)


def _holds(engine, events) -> bool:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT count(*) FROM omni_events")).scalar() == events
        except DBAPIError:
            return False


def ensure_database(url) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist yet."""
    target = make_url(url)
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        statement_timeout_ms=0,
    )
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            ).scalar()
        if not found:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    finally:
        admin.dispose()


def prepare(url, events, days, reuse, horizon, keep=False, now=NOW, **config):
    """Load (unless reused) events ending at ``now``, refresh from scratch (unless
    ``keep``: then the rollups a previous run left are caught up, and the refresh time is
    ``None``), compare at ``now``; returns (load s, refresh s, app with rollups on and
    ``config``, app with rollups off)."""
    ensure_database(url)
    engine = make_engine(url, statement_timeout_ms=0)
    loaded = 0.0
    if not (reuse and _holds(engine, events)):
        loaded = load(engine, events, max(events // 10, 1), days, now)
        keep = False  # the rollups of earlier rows would be caught up, not redone
    on = bench_app(
        url,
        OMNI_CLOCK=lambda: now,
        OMNI_DASHBOARD_ROLLUPS="on",
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=horizon,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
        **config,
    )
    off = bench_app(
        url, OMNI_CLOCK=lambda: now, OMNI_DASHBOARD_ROLLUPS="off", OMNI_DASHBOARD_CACHE_SECONDS=0
    )
    rollups = on.extensions["omni_dashboard"].rollups
    refreshed = None
    if not keep:
        rollups.reset()
    started = time.perf_counter()
    rollups.refresh()
    if not keep:
        refreshed = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in rollup_metadata.sorted_tables:
            conn.execute(text(f"VACUUM ANALYZE {table.name}"))
    for _, path in calls(now):
        if _body(on, path) != _body(off, path):
            raise SystemExit(f"rollups on and off differ on {path}")
    return loaded, refreshed, on, off


@contextmanager
def dead_letter_timings():
    """Yield ``{database: [ms, ...]}`` of the dead-letter statements run meanwhile: with
    rollups on, the read of the counts the triggers keep; with rollups off, the raw counts."""
    found, started = defaultdict(list), {}

    def before(conn, cursor, statement, parameters, context, executemany):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        began = started.pop(id(cursor), None)
        if began is not None and "dead_letter" in statement:
            found[conn.engine.url.database].append((time.perf_counter() - began) * 1000)

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def _dead_letter_p50(found: dict, databases: dict) -> str:
    """The p50 of the dead-letter statements at every size."""
    return ", ".join(
        f"{percentile(found[database], 0.5):.2f} ms at {size:,}"
        for size, database in databases.items()
        if found.get(database)
    )


def main(argv=None):
    parser = sized_parser(__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="keep already loaded databases")
    parser.add_argument(
        "--horizon-minutes", type=int, default=30, help="OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES"
    )
    parser.add_argument(
        "--keep-rollups",
        action="store_true",
        help="catch up the rollups a previous run left instead of refreshing from scratch",
    )
    parser.add_argument(
        "--off-sizes",
        help="sizes whose rollups-off calls are timed (default: all; at 100M one raw "
        "/event-ops/metrics takes about a minute)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    off_sizes = [int(s) for s in args.off_sizes.split(",")] if args.off_sizes else sizes
    apps, refresh_seconds, databases = {}, {}, {}
    for size in sizes:
        url = args.database_url.replace("{size}", str(size))
        databases[size] = make_url(url).database
        loaded, refresh_seconds[size], *apps[size] = prepare(
            url, size, args.days, args.reuse, args.horizon_minutes, args.keep_rollups
        )
        refreshed = refresh_seconds[size]
        rolled = f"refreshed from scratch in {refreshed:.0f} s" if refreshed else "caught up"
        print(f"{size:,} events loaded in {loaded:.0f} s, rollups {rolled}", flush=True)
    timed, dead_letters = {}, {}
    for phase, state in enumerate(("on", "off")):
        calls = [
            Call(f"{label} {state} {size}", apps[size][phase], path)
            for label, path in CALLS
            for size in (sizes if state == "on" else off_sizes)
        ]
        with dead_letter_timings() as dead_letters[state]:
            timed.update(measure(calls, args.repeat, KEY))
    header = " | ".join(f"p50 / p95 at {s:,} (ms)" for s in sizes)
    lines = [
        f"{args.repeat} requests per call, interleaved across calls and sizes, first every call "
        "with rollups on, then every call with rollups off; Flask test client "
        f"in-process, PostgreSQL 15, {platform.machine()}, 2 cores; events over {args.days} "
        "days, automation logs = events / 10, payloads = events / 5; horizon "
        f"{args.horizon_minutes} min (the raw tail is the last {args.horizon_minutes} to "
        f"{args.horizon_minutes + 15} minutes). Responses with rollups on and off were "
        "compared first: equal.",
        "",
        f"| call | rollups | {header} |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    for label, _ in CALLS:
        for state in ("on", "off"):
            key = f"{label} {state}"
            found = [timed.get(f"{key} {s}") for s in sizes]
            cells = " | ".join(cell(f) if f else "not timed" for f in found)
            lines.append(f"| {label} | {state} | {cells} |")
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        lines.append("")
        for label, _ in RATIOS:
            ratio = timed[f"{label} on {high}"]["p50"] / timed[f"{label} on {low}"]["p50"]
            lines.append(f"- {label}, rollups on: p50 at {high:,} / p50 at {low:,} = {ratio:.2f}")
        for state, how in (("on", "kept by triggers"), ("off", "counted raw, alongside")):
            counts = _dead_letter_p50(dead_letters[state], databases)
            lines.append(f"- dead-letter counts, rollups {state} ({how}): p50 {counts}")
    if all(refresh_seconds[s] is not None for s in sizes):
        refresh = ", ".join(f"{refresh_seconds[s]:.1f} s at {s:,}" for s in sizes)
        lines.append(f"- one refresh from scratch (every slot, every kind): {refresh}")
    else:
        lines.append("- the rollups of an earlier run were kept and caught up (--keep-rollups)")
    publish("rollups", lines, args.write)


if __name__ == "__main__":
    main()
