"""This checkout against another (an earlier commit): the rollups-on calls of bench.rollups,
timed in fresh processes that alternate between the two.

    git worktree add /tmp/baseline <commit>
    python -m bench.ab --baseline /tmp/baseline \
        --database-url 'postgresql://root@127.0.0.1/omni_bench_{size}' --rounds 3 --write

The databases must hold loaded events and refreshed rollups (run bench.rollups first). Each
process imports the plugin, the reference host and bench.rollups' calls of its own
checkout and times every call at every size, interleaved (``bench.harness.measure``); the
report gives per call the median over the rounds of each side's p50, and their ratio. This
machine's state moves the absolute numbers between runs by more than a change of code does;
alternating processes lets both sides see the same drift.
"""

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from .harness import sized_parser
from .report import publish

HERE = Path(__file__).resolve().parent.parent
# Run in a side's checkout: its own plugin, host and calls.
MEASURE = """
import json, sys
from bench.harness import KEY, Call, bench_app, measure
from bench.rollups import CALLS

url, sizes, repeat = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
apps = {
    size: bench_app(
        url.replace("{size}", str(size)),
        OMNI_DASHBOARD_ROLLUPS="on",
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )
    for size in sizes
}
calls = [Call(f"{label} at {size:,}", apps[size], path) for label, path in CALLS for size in sizes]
print(json.dumps({label: found["p50"] for label, found in measure(calls, repeat, KEY).items()}))
"""


def _side(where: Path, args) -> dict[str, float]:
    command = [sys.executable, "-c", MEASURE, args.database_url, args.sizes, str(args.repeat)]
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = sized_parser(__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    found: dict[str, dict[str, list[float]]] = {"this": {}, "baseline": {}}
    for _ in range(args.rounds):
        for side, where in (("this", HERE), ("baseline", args.baseline)):
            for label, p50 in _side(where, args).items():
                found[side].setdefault(label, []).append(p50)
    lines = [
        f"{args.rounds} rounds, each a fresh process per side, this checkout first; "
        f"{args.repeat} requests per call and size in each (rollups on, cache off).",
        "",
        "| call | this checkout p50 (ms) | baseline p50 (ms) | this / baseline |",
        "|---|---:|---:|---:|",
    ]
    ratios = []
    for label, values in found["this"].items():
        mine, theirs = statistics.median(values), statistics.median(found["baseline"][label])
        ratios.append(mine / theirs)
        lines.append(f"| {label} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.2f} |")
    mean = math.exp(statistics.fmean(math.log(r) for r in ratios))
    spread = f"{min(ratios):.2f} to {max(ratios):.2f}"
    lines += ["", f"- geometric mean of the ratios: {mean:.3f}; range {spread}"]
    publish("ab", lines, args.write)


if __name__ == "__main__":
    main()
