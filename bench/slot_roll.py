"""Rolling one closed slot up: from its events, against from the tail that keeps it.

    python -m bench.slot_roll --database-url postgresql://root@127.0.0.1/omni_steady_1m --write

Finds the slot with the most events among those the tail keeps and no refresh has rolled
yet (``bench.steady`` at 2,000 events/s leaves such slots), then times, alternately, what
a refresh reads to roll it for each kind that reads its own rows (the kinds rolled from
those sum their slot rows either way): its events grouped by the kind's keys, against its
tail view's rows of the slot. Both must sum to the same rows. Then times what the chunk
also reads for the slot's fine rows (see rollups.fine: its events by fine bucket, one scan
per family). Nothing is written.
"""

import argparse
import statistics
import time

from sqlalchemy import bindparam, func, select

from host_example.db import make_engine
from omni_dashboard_plugin.grid import slot_time
from omni_dashboard_plugin.rollups import fine
from omni_dashboard_plugin.rollups.kinds import FINES, KINDS
from omni_dashboard_plugin.rollups.refresh import _summed
from omni_dashboard_plugin.rollups.source import by_slot
from omni_dashboard_plugin.rollups.state import read_watermark
from omni_dashboard_plugin.sql.constructs import slot_index, slot_start
from omni_dashboard_plugin.sql.tables import omni_events

from .report import publish

# The kinds a refresh rolls from their own rows, which a tail can answer.
TAILED = [kind for kind in KINDS if kind.rolled_from is None and kind.tail is not None]


def _fullest_kept_slot(connection) -> tuple[int, int]:
    """The slot the tail keeps (not yet rolled) with the most events, and their count."""
    mark = read_watermark(connection)
    if mark is None or mark.tail is None:
        raise SystemExit("no kept tail here: run bench.steady on this database first")
    slot = slot_index(slot_start(omni_events.c.received_at))
    found = connection.execute(
        select(slot, func.count())
        .where(omni_events.c.received_at >= slot_time(max(mark.tail, mark.watermark_slot)))
        .group_by(slot)
        .order_by(func.count().desc())
        .limit(1)
    ).first()
    if found is None:
        raise SystemExit("the tail keeps no events here")
    return int(found[0]), int(found[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url, statement_timeout_ms=0)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
        slot, events = _fullest_kept_slot(connection)
        bounds = {"since": slot_time(slot), "before": slot_time(slot + 1)}
        bounds |= {"low": slot, "high": slot + 1}
        ways = {
            kind.name: {
                "events": by_slot(kind, bindparam("since"), bindparam("before")),
                "tail": _summed(kind, kind.tail.table("tail")),
            }
            for kind in TAILED
            if kind.tail is not None
        }
        fine_rows = {kind.name: fine.by_bucket(kind) for kind in FINES}
        seconds = {name: {"events": [], "tail": []} for name in ways}
        fine_seconds: dict[str, list[float]] = {name: [] for name in fine_rows}
        for _ in range(args.repeat):
            for name, statement in fine_rows.items():
                began = time.perf_counter()
                connection.execute(statement, bounds).all()
                fine_seconds[name].append(time.perf_counter() - began)
            for name, statements in ways.items():
                answers = {}
                for way, statement in statements.items():
                    began = time.perf_counter()
                    rows = connection.execute(statement, bounds)
                    answers[way] = sorted(map(tuple, rows), key=repr)  # NULLs among values
                    seconds[name][way].append(time.perf_counter() - began)
                if answers["events"] != answers["tail"]:
                    raise SystemExit(f"{name}: the tail's rows differ from the events'")
    lines = [
        f"One slot of {events:,} events (the fullest the tail kept on "
        f"`{engine.url.database}`), read {args.repeat} times each way, alternately; "
        "medians; PostgreSQL 15, 2 cores, no parallel workers.",
        "",
        "| kind | from its events (ms) | from its tail (ms) | ratio |",
        "|---|---:|---:|---:|",
    ]
    totals = {"events": 0.0, "tail": 0.0}
    for name, ways_seconds in seconds.items():
        medians = {way: statistics.median(s) * 1000 for way, s in ways_seconds.items()}
        totals = {way: totals[way] + medians[way] for way in totals}
        ratio = medians["events"] / medians["tail"]
        lines.append(f"| {name} | {medians['events']:.1f} | {medians['tail']:.1f} | {ratio:.0f}x |")
    ratio = totals["events"] / totals["tail"]
    lines.append(
        f"| all {len(seconds)} | {totals['events']:.1f} | {totals['tail']:.1f} | {ratio:.0f}x |"
    )
    fine_medians = {name: statistics.median(s) * 1000 for name, s in fine_seconds.items()}
    lines += [
        "",
        "What a chunk that rolls the slot also reads to store its fine rows (its events by "
        "10-second bucket, per family; the same slot, medians): "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in fine_medians.items())
        + f", {sum(fine_medians.values()):.1f} ms in all.",
    ]
    publish("slot-roll", lines, args.write)


if __name__ == "__main__":
    main()
