"""Cost of the provider fields: extended endpoints next to their pre-enhancement responses.

    python -m bench.providers --database-url postgresql://root@127.0.0.1/omni_bench \
        --events 1000000 --logs 1000000

Loads the data (skip with --no-load), then times each endpoint with every provider off
(the pre-enhancement response) and on, interleaved, and prints a Markdown table.
"""

import argparse

from host_example.db import make_engine

from .harness import KEY, NOW, Call, bench_app, measure
from .loader import load
from .report import write_section

ENDPOINTS = [
    ("GET /event-ops/metrics", "/api/v2/event-ops/metrics"),
    ("GET /events/analytics (24 h)", "/api/v2/events/analytics"),
    ("GET /events/analytics?allTime=true", "/api/v2/events/analytics?allTime=true"),
    ("GET /automation-metrics", "/api/v2/automation-metrics"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    if not args.no_load:
        engine = make_engine(args.database_url, statement_timeout_ms=0)  # loading may take long
        seconds = load(engine, args.events, args.logs, args.days, NOW)
        print(f"loaded {args.events} events, {args.logs} automation logs in {seconds:.0f} s")
    before = bench_app(args.database_url, OMNI_DASHBOARD_PROVIDERS="none")
    after = bench_app(args.database_url, OMNI_DASHBOARD_PROVIDERS="all")
    calls = []
    for label, url in ENDPOINTS:
        calls += [Call(f"{label}|before", before, url), Call(f"{label}|after", after, url)]
    results = measure(calls, args.repeat, KEY)
    lines = [
        f"{args.events:,} events, {args.logs:,} automation logs over {args.days} days; "
        f"{args.repeat} interleaved requests each.",
        "",
        "| endpoint | p50 before (ms) | p50 with providers (ms) | ratio | p95 before | p95 after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, _ in ENDPOINTS:
        b, a = results[f"{label}|before"], results[f"{label}|after"]
        lines.append(
            f"| {label} | {b['p50']:.1f} | {a['p50']:.1f} | {a['p50'] / b['p50']:.2f}x "
            f"| {b['p95']:.1f} | {a['p95']:.1f} |"
        )
    print("\n".join(lines))
    if args.write:
        write_section("providers", "\n".join(lines))


if __name__ == "__main__":
    main()
