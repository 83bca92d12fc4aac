"""What the plugin costs the host's writers: Omni's write pattern with its triggers on and off.

    python -m bench.writes --database-url postgresql://root@127.0.0.1/omni_bench_1000000 \
        --writers 1,4,16 --seconds 4 --blocks 12 --write

Omni stores each event with a single-row ``INSERT`` and then moves it with single-row
``UPDATE`` s (received -> processing -> completed, then delivered: 1 to 3 updates, 2 on
average), and logs each automation it evaluates for it with a single-row ``INSERT`` into
``automation_logs`` (``--logs`` per event, 1 by default), each statement its own committed
transaction. Writer processes (one connection
each, ``--writers`` of them at a time) do exactly that as fast as they can, for
``--seconds`` per block; the blocks alternate the plugin's write-path work on and off
(its triggers on ``omni_events`` and ``automation_logs`` enabled or disabled, nothing else
changes), ``--blocks``
per writer count, on the same database in one run, so both see the same machine. With
``--floor`` a third mode joins the rotation: the plugin's triggers off and, in their place,
triggers of the same definitions (events, ``WHEN`` clauses) calling a PL/pgSQL function
that does nothing: what any row trigger costs before it does any work. Per
writer count and mode: the per-event p50 and p99 (insert to the last update's commit),
the events per second sustained, and, from the database's counters over the blocks, the
statements the host sent and the plugin's trigger calls, the rows the plugin wrote and
the WAL bytes (``pg_current_wal_lsn()`` before and after; the server's, so other
sessions' writes count too: the median block is reported) per event.

On a database loaded by ``bench.rollups`` or ``bench.steady --load`` (the rollups are
installed and caught up first); the events written (their ``external_id`` starts with
``bench.writes-``) and their automation logs are deleted at the end, and nothing else.
"""

import argparse
import multiprocessing
import os
import platform
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from host_example.tables import CHANNELS
from omni_dashboard_plugin.rollups import tail
from omni_dashboard_plugin.rollups.kinds import PREFIX, state
from omni_dashboard_plugin.rollups.triggers import PLUGIN_PATTERN

from .harness import bench_app, percentile
from .report import publish

INSTANCES = [uuid.UUID(int=n + 1) for n in range(10)]  # the loader's ten
INSERT = (
    "INSERT INTO omni_events (id, external_id, channel, instance_id, event_type, direction, "
    "content_type, text_content, chat_id, status, received_at, created_at, raw_payload) "
    "VALUES (%s, %s, %s, %s, 'message.received', 'inbound', 'text', %s, %s, 'received', "
    "%s, %s, %s)"
)
# The moves of an event, in order; an event makes the first 1, 2 or 3 of them.
UPDATES = (
    "UPDATE omni_events SET status = 'processing' WHERE id = %s",
    "UPDATE omni_events SET status = 'completed', processed_at = %s, processing_time_ms = %s, "
    "agent_latency_ms = %s, total_latency_ms = %s WHERE id = %s",
    "UPDATE omni_events SET delivered_at = %s WHERE id = %s",
)
# An automation evaluated for the event (the loader's automations: bench.loader).
LOG = (
    "INSERT INTO automation_logs (id, automation_id, event_id, status, conditions_matched, "
    "actions_executed, execution_time_ms, created_at) "
    'VALUES (%s, %s, %s, %s, %s, \'[{"action": "send_message"}]\', %s, %s)'
)
LOG_STATUSES = ("success", "skipped", "skipped", "failed")
# The host tables whose triggers the blocks switch.
TABLES = ("omni_events", "automation_logs")
TICKS = os.sysconf("SC_CLK_TCK")
# The floor's function, and what its triggers' names start with.
FLOOR = "bench_floor"
MODES = ("off", "on", "floor")
FLOOR_PATTERN = "bench\\_floor\\_%"
# What the external_id of every event this bench writes starts with: it deletes those, and
# only those, at the end (a database `bench.steady --load` loaded holds events up to its clock).
MARK = "bench.writes-"
PAYLOAD = '{"key": {"remoteJid": "chat@s.whatsapp.net", "fromMe": false}, "pushName": "bench"}'


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _write(dsn, seconds, start, out, seed, flush, ago, logs) -> None:
    """One writer: events back to back for ``seconds`` after ``start`` is set, each received
    ``ago`` before the clock (Omni's ``received_at`` is the moment it stores the event: 0)
    with ``logs`` automation logs; puts (per-event seconds, statements) on ``out``."""
    conn = psycopg.connect(dsn, autocommit=True, options=f"-c synchronous_commit={flush}")
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    backend = cur.fetchone()[0]
    cur.execute("SELECT id FROM automations ORDER BY id")
    automations = [row[0] for row in cur.fetchall()]
    if logs and not automations:
        raise SystemExit("no automations to log: load the database with bench.rollups first")
    latencies, statements, n = [], 0, 0
    start.wait()
    cpu = _cpu_seconds(backend)
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        key, n = uuid.uuid4(), n + 1
        moves = 1 + (n + seed) % 3
        at = datetime.now(UTC).replace(tzinfo=None) - ago
        began = time.perf_counter()
        cur.execute(
            INSERT,
            (
                key,
                f"{MARK}{key}",
                CHANNELS[n % 5],
                INSTANCES[n % 10],
                "hello " * 12,
                f"chat-{n % 500}",
                at,
                at,
                PAYLOAD,
            ),
        )
        cur.execute(UPDATES[0], (key,))
        if moves > 1:
            cur.execute(UPDATES[1], (at, 40 + n % 900, 300 + n % 2000, 340 + n % 2900, key))
        if moves > 2:
            cur.execute(UPDATES[2], (at, key))
        for k in range(logs):
            automation = automations[(n + k) % len(automations)]
            status = LOG_STATUSES[(n + k) % len(LOG_STATUSES)]
            cur.execute(LOG, (uuid.uuid4(), automation, str(key), status, True, n % 50, at))
        latencies.append(time.perf_counter() - began)
        statements += 1 + moves + logs
    cpu = _cpu_seconds(backend) - cpu
    conn.close()
    out.put((latencies, statements, cpu))


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend, from /proc (the server runs
    on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _triggers(cur, pattern: str, enabled: bool) -> None:
    for table in TABLES:
        cur.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
            "AND tgname LIKE %s AND NOT tgisinternal",
            (table, pattern),
        )
        for (name,) in cur.fetchall():
            state = "ENABLE" if enabled else "DISABLE"
            cur.execute(f"ALTER TABLE {table} {state} TRIGGER {name}")


def _mode(cur, mode: str) -> None:
    """Enable the plugin's triggers ("on"), none ("off") or the floor's ("floor")."""
    _triggers(cur, PLUGIN_PATTERN, mode == "on")
    _triggers(cur, FLOOR_PATTERN, mode == "floor")


def _create_floor(cur) -> None:
    """Triggers defined as the plugin's (events, WHEN clauses, statement or row level),
    disabled, each calling a PL/pgSQL function that does nothing."""
    cur.execute(
        f"CREATE OR REPLACE FUNCTION {FLOOR}() RETURNS trigger LANGUAGE plpgsql "
        "AS $$BEGIN RETURN NULL; END$$"
    )
    for table in TABLES:
        cur.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = %s::regclass AND tgname LIKE %s AND NOT tgisinternal",
            (table, PLUGIN_PATTERN),
        )
        for name, definition in cur.fetchall():
            floor = f"{FLOOR}_{name.removeprefix(PREFIX)}"
            definition = definition.replace(f"TRIGGER {name} ", f"TRIGGER {floor} ", 1)
            definition = re.sub(
                r"EXECUTE FUNCTION \S+\(\)", f"EXECUTE FUNCTION {FLOOR}()", definition
            )
            cur.execute(f"DROP TRIGGER IF EXISTS {floor} ON {table}")
            cur.execute(definition)
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER {floor}")


def _drop_floor(cur) -> None:
    cur.execute(f"DROP FUNCTION IF EXISTS {FLOOR}() CASCADE")


def _counters(cur) -> tuple[int, int, int]:
    """(WAL position, rows inserted into the plugin's tables, the plugin's function calls)."""
    cur.execute("SELECT pg_stat_clear_snapshot()")
    cur.execute("SELECT pg_current_wal_lsn() - '0/0'")
    wal = int(cur.fetchone()[0])
    cur.execute(
        "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname LIKE %s",
        (PREFIX.replace("_", "\\_") + "%",),
    )
    rows = int(cur.fetchone()[0])
    cur.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
        "WHERE funcname LIKE %s OR funcname = %s",
        (PLUGIN_PATTERN, FLOOR),
    )
    return wal, rows, int(cur.fetchone()[0])


def _block(dsn, writers: int, seconds: float, flush: str, ago: timedelta, logs: int) -> dict:
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    procs = [
        context.Process(
            target=_write, args=(dsn, seconds, start, out, n, flush, ago, logs), daemon=True
        )
        for n in range(writers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # connected
    start.set()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    latencies = [s for found, _, _ in results for s in found]
    return {
        "latencies": latencies,
        "events": len(latencies),
        "statements": sum(n for _, n, _ in results),
        "cpu": sum(cpu for _, _, cpu in results),
        "rate": len(latencies) / seconds,
    }


def _prepare(url: str) -> None:
    """Rollups installed and caught up, the tail kept, as under a host in production."""
    app = bench_app(url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_DASHBOARD_ROLLUPS_REFRESH="cron")
    rollups = app.extensions["omni_dashboard"].rollups
    rollups.install()
    rollups.refresh()
    for engine in (app.extensions["omni_host"].engine, rollups.engine):
        engine.dispose()  # their sessions' statistics flushed before the blocks


def run(
    url: str,
    counts: list[int],
    seconds: float,
    blocks: int,
    flush: str = "on",
    floor=False,
    ago: timedelta = timedelta(0),
    logs: int = 1,
) -> dict:
    """{(writers, mode): {"latencies", "events", "statements", "rate" (list per block),
    "wal", "rows", "calls"}}; the modes are "off" and "on", and "floor" with ``floor``."""
    dsn = libpq_dsn(url)
    _prepare(url)
    admin = psycopg.connect(dsn, autocommit=True)
    cur = admin.cursor()
    modes = MODES if floor else MODES[:2]
    if floor:
        _create_floor(cur)
    cur.execute("ALTER DATABASE " + make_url(url).database + " SET track_functions = 'pl'")
    found: dict = {}
    cur.execute("SELECT clock_timestamp() AT TIME ZONE 'UTC' - %s", (ago + timedelta(seconds=5),))
    (since,) = cur.fetchone()  # before any event the writers date
    time.sleep(1.5)
    try:
        for writers in counts:
            for block in range(blocks):
                mode = modes[(block + writers) % len(modes)]
                _mode(cur, mode)
                before = _counters(cur)
                result = _block(dsn, writers, seconds, flush, ago, logs)
                time.sleep(0.6)  # the writers' statistics flushed
                after = _counters(cur)
                into = found.setdefault(
                    (writers, mode),
                    {
                        "latencies": [],
                        "events": 0,
                        "statements": 0,
                        "cpu": 0.0,
                        "rate": [],
                        "wal": [],
                    },
                )
                into["cpu"] += result["cpu"]
                into["latencies"] += result["latencies"]
                into["events"] += result["events"]
                into["statements"] += result["statements"]
                into["rate"].append(result["rate"])
                into["wal"].append((after[0] - before[0]) / result["events"])
                into["rows"] = into.get("rows", 0) + after[1] - before[1]
                into["calls"] = into.get("calls", 0) + after[2] - before[2]
                print(
                    f"  {writers:>2} writers, {mode:>5}: "
                    f"{result['rate']:7.0f} events/s, p50 "
                    f"{percentile(result['latencies'], 0.5) * 1000:.2f} ms",
                    flush=True,
                )
    finally:
        _drop_floor(cur)
        _mode(cur, "on")
        # The blocks without triggers changed rows the kept tail missed: the next refresh
        # seeds it again.
        cur.execute("DELETE FROM " + state.name + " WHERE name = %s", (tail.STATE_NAME,))
        cur.execute("ALTER DATABASE " + make_url(url).database + " RESET track_functions")
        written = "omni_events.received_at >= %s AND omni_events.external_id LIKE %s"
        # The statistics know none of these rows: a nested loop of the two would take minutes.
        cur.execute("SET enable_nestloop = off")
        cur.execute(
            "DELETE FROM automation_logs USING omni_events WHERE automation_logs.created_at "
            f">= %s AND {written} AND automation_logs.event_id = CAST(omni_events.id AS text)",
            (since, since, MARK + "%"),
        )
        cur.execute(f"DELETE FROM omni_events WHERE {written}", (since, MARK + "%"))
        admin.close()
    return found


def report(found: dict, counts, seconds, blocks, flush, ago: timedelta, logs: int) -> list[str]:
    modes = [m for m in MODES if (counts[0], m) in found]
    rotation = (
        "plugin on and off alternating"
        if len(modes) == 2
        else (
            "plugin off, on, and its triggers calling a function that does nothing (floor) in turn"
        )
    )
    lines = [
        f"{blocks} blocks of {seconds:g} s per writer count, {rotation}; "
        f"each writer a process with one connection, every statement its own transaction "
        f"(synchronous_commit {flush}); "
        f"an event is a single-row INSERT and 1 to 3 single-row UPDATEs (2 on average), "
        f"and {logs} single-row INSERT{'s' * (logs != 1)} into automation_logs, "
        f"received {ago.total_seconds():g} s before the database's clock; "
        f"PostgreSQL 15, {platform.machine()}, 2 cores shared with the writers.",
        "",
        "| writers | plugin | p50 per event (ms) | p99 per event (ms) | events/s | "
        "server CPU / event (ms) | host statements / event | plugin trigger calls / event | "
        "plugin rows / event | WAL bytes / event |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary = []
    for writers in counts:
        row = {}
        for mode in modes:
            r = found[(writers, mode)]
            p50 = percentile(r["latencies"], 0.5) * 1000
            p99 = percentile(r["latencies"], 0.99) * 1000
            rate = statistics.mean(r["rate"])
            cpu = r["cpu"] / r["events"] * 1000
            row[mode] = (p50, rate, cpu)
            lines.append(
                f"| {writers} | {mode} | {p50:.2f} | {p99:.2f} | {rate:,.0f} | "
                f"{cpu:.3f} | {r['statements'] / r['events']:.2f} | "
                f"{r['calls'] / r['events']:.2f} | "
                f"{r['rows'] / r['events']:.2f} | {statistics.median(r['wal']):,.0f} |"
            )
        p_off, r_off, c_off = row["off"]
        for mode in modes[1:]:
            p, r, c = row[mode]
            summary.append(
                f"- {writers} writer{'s' * (writers > 1)}: p50 per event {p / p_off:.2f}x "
                f"{'with the plugin on' if mode == 'on' else 'with the floor'}, events/s "
                f"{(r / r_off - 1) * 100:+.0f} %, server CPU per event {c / c_off:.2f}x"
            )
    return [*lines, "", *summary]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--writers", default="1,4,16", help="writer counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=4, help="length of one block")
    parser.add_argument("--blocks", type=int, default=12, help="blocks per writer count")
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="the writers' synchronous_commit: off takes the disk's flushes (shared with "
        "whatever else the machine does) out of the timing, leaving the CPU cost",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="add blocks with triggers of the plugin's definitions calling a function that "
        "does nothing: what any row trigger costs",
    )
    parser.add_argument(
        "--received-ago",
        type=float,
        default=0,
        help="seconds between an event's received_at and the clock when it is written (0, "
        "as Omni; more than the tail's margin: every write is to an aged event, the "
        "plugin's triggers call their function on each)",
    )
    parser.add_argument(
        "--logs",
        type=int,
        default=1,
        help="automation logs written per event (Omni logs every automation it evaluates)",
    )
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.writers.split(",")]
    flush = args.synchronous_commit
    ago = timedelta(seconds=args.received_ago)
    found = run(
        args.database_url, counts, args.seconds, args.blocks, flush, args.floor, ago, args.logs
    )
    section = "writes" if flush == "on" else "writes-no-flush"
    section += "-aged" if ago else ""
    lines = report(found, counts, args.seconds, args.blocks, flush, ago, args.logs)
    publish(section, lines, args.write)


if __name__ == "__main__":
    main()
