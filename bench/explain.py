"""Rows and buffers each call reads, per table size: what grows with the data.

    python -m bench.explain --database-url 'postgresql://root@127.0.0.1/omni_bench_{size}' \
        --sizes 1000000,10000000 --write

On the databases ``bench.rollups`` loaded and rolled up, each call of its table is made
once with rollups on while its statements are recorded; each SELECT is then run again
under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` in one REPEATABLE READ transaction (with
parallel workers off, as a rollup reader runs). Reported per call: statements, rows the
scans returned (before any aggregation), and shared buffers touched (hit + read), summed over
its statements, and the rows of the largest statement.
"""

import argparse

from sqlalchemy import event

from host_example.db import make_engine

from .harness import KEY, bench_app
from .report import publish
from .rollups import CALLS


def _statements(app, path) -> list[tuple[str, object]]:
    """The SELECT statements (with their parameters) one request runs."""
    engine = app.extensions["omni_host"].engine
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = app.test_client().get(path, headers={"x-api-key": KEY})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return seen


def _walk(node):
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def _explained(conn, statement, parameters) -> tuple[int, int]:
    """(rows the scans returned, shared buffers hit + read) of one statement."""
    plan = conn.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters or {}
    ).scalar()[0]
    rows = sum(
        node["Actual Rows"] * node["Actual Loops"]
        for node in _walk(plan["Plan"])
        if "Scan" in node["Node Type"]
    )
    top = plan["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return rows, buffers


def measure(url: str) -> dict[str, dict]:
    """Per call label: statements, rows, buffers, the largest statement's rows."""
    app = bench_app(
        url,
        OMNI_DASHBOARD_ROLLUPS="on",
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )
    engine = make_engine(url, statement_timeout_ms=0)
    found = {}
    for label, path in CALLS:
        statements = _statements(app, path)
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            costs = [_explained(conn, s, p) for s, p in statements]
            conn.rollback()
        found[label] = {
            "statements": len(costs),
            "rows": sum(rows for rows, _ in costs),
            "buffers": sum(buffers for _, buffers in costs),
            "largest": max((rows for rows, _ in costs), default=0),
        }
    engine.dispose()
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {size: measure(args.database_url.replace("{size}", str(size))) for size in sizes}
    header = " | ".join(f"{s:,}: statements / rows / buffers (largest)" for s in sizes)
    lines = [
        "Rollups on, one request per call after `bench.rollups`; rows = rows the scans "
        "returned, buffers = shared buffers hit or read (8 kB pages), summed over the "
        "call's statements; in brackets the rows of its largest statement.",
        "",
        f"| call | {header} |",
        "|---|" + "---:|" * len(sizes),
    ]
    for label, _ in CALLS:
        cells = " | ".join(
            "{statements} / {rows:,} / {buffers:,} ({largest:,})".format(**results[s][label])
            for s in sizes
        )
        lines.append(f"| {label} | {cells} |")
    publish("explain", lines, args.write)


if __name__ == "__main__":
    main()
