"""GET /api/v2/dashboard next to the calls it replaces, at several table sizes, in one run.

    python -m bench.dashboard --database-url postgresql://root@127.0.0.1/omni_bench \
        --sizes 1000000,10000000 --write

For each size: loads that many events (automation logs = events / 10, dead letters,
payloads, instances) server-side, then times every call interleaved. The summary is timed
with its cache off (the cost of one computation) and on (what a poller pays).
"""

import platform

from host_example.db import make_engine

from .harness import KEY, NOW, Call, bench_app, measure, sized_parser
from .loader import load
from .report import cell, publish

REPLACED = [
    ("GET /event-ops/metrics", "/api/v2/event-ops/metrics"),
    ("GET /events/analytics (timeline, breakdowns)", "/api/v2/events/analytics"),
    ("GET /dead-letters/stats", "/api/v2/dead-letters/stats"),
    ("GET /automation-metrics", "/api/v2/automation-metrics"),
    ("GET /health", "/api/v2/health"),
]


def run_size(url, events, repeat, days):
    engine = make_engine(url, statement_timeout_ms=0)  # loading may take long
    seconds = load(engine, events, max(events // 10, 1), days, NOW)
    uncached = bench_app(url, OMNI_DASHBOARD_CACHE_SECONDS=0)
    cached = bench_app(url, OMNI_DASHBOARD_CACHE_SECONDS=3600)
    calls = [
        Call("GET /api/v2/dashboard (cache off)", uncached, "/api/v2/dashboard"),
        Call("GET /api/v2/dashboard (cached)", cached, "/api/v2/dashboard"),
    ] + [Call(label, uncached, path) for label, path in REPLACED]
    return seconds, measure(calls, repeat, KEY)


def main(argv=None):
    parser = sized_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        seconds, results[size] = run_size(args.database_url, size, args.repeat, args.days)
        print(f"{size:,} events loaded in {seconds:.0f} s", flush=True)
    labels = list(results[sizes[0]])
    header = " | ".join(f"p50 / p95 at {s:,} (ms)" for s in sizes)
    lines = [
        f"{args.repeat} interleaved requests per call and size, Flask test client in-process, "
        f"PostgreSQL 15, {platform.machine()}, 2 cores; events over {args.days} days, "
        "automation logs = events / 10.",
        "",
        f"| call | {header} |",
        "|---|" + "---:|" * len(sizes),
    ]
    for label in labels:
        cells = " | ".join(cell(results[s][label]) for s in sizes)
        lines.append(f"| {label} | {cells} |")
    replaced = " | ".join(
        f"{sum(results[s][label]['p50'] for label, _ in REPLACED):.1f}" for s in sizes
    )
    lines.append(f"| sum of the five replaced calls (p50) | {replaced} |")
    publish("dashboard", lines, args.write)


if __name__ == "__main__":
    main()
