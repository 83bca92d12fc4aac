"""Steady state: the dashboard timed while writers ingest and the refresh runs on its own.

    python -m bench.steady --database-url postgresql://root@127.0.0.1/omni_bench_10000000 \
        --minutes 10 --rate 200 --write

    python -m bench.steady --database-url postgresql://root@127.0.0.1/omni_steady \
        --load 1000000 --minutes 5 --rate 2000 --single-row-writers 16 --refresh-seconds 2 \
        --write

The clock is the database's (read at the start, then running in real time), since Omni
dates its rows by it and the rollups' tail compares with it; ``--load N`` first loads N
events ending at that clock and refreshes the rollups from scratch (a database loaded by
``bench.rollups`` ends at its ``NOW``, days before). A writer process inserts ``--rate``
events a second in batches (half of the inbound ones arrive ``received`` and are completed
2 to 60 seconds later, as Omni's pipeline does, within the rollups' horizon) and moves a
dead letter now and then. With ``--single-row-writers N``, N pgbench connections write as
Omni does instead, one row per statement and transaction (see :func:`pgbench_script`), at
``--rate`` events a second, and a :class:`Completer` process completes and moves dead
letters. A refresh process rolls up what closed every ``--refresh-seconds`` (15: what
``flask omni-dashboard refresh --every 15`` does beside a host in cron mode), on a
connection of its own, whose PostgreSQL backend's CPU time is read from /proc. Meanwhile
the main process, its heap frozen once the apps are loaded (as the reference host's
gunicorn workers freeze theirs), times the calls round-robin, after ``--warm-up-seconds`` of the
same calls untimed (and a ``CHECKPOINT`` before the writers start, so that PostgreSQL's
flush of a load's writes does not fall in the first minutes). Every
``--checkpoint-seconds`` the writers pause, the clock stops, and every call is compared
with rollups on and off (they must be equal); then all resume. At the end the rows the
writers added are deleted again, so that ``bench.rollups --reuse`` still finds the
database it loaded.
"""

import argparse
import heapq
import math
import multiprocessing
import os
import random
import re
import resource
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import make_url

from host_example.db import make_engine
from host_example.tables import CHANNELS, dead_letter_events, omni_events
from omni_dashboard_plugin.rollups import tail
from omni_dashboard_plugin.rollups.kinds import TAILS
from omni_dashboard_plugin.rollups.refresh import refresh

from .harness import KEY, bench_app, freeze_loaded_heap, percentile
from .report import publish
from .rollups import _body, calls, ensure_database, prepare
from .writes import libpq_dsn

INSTANCES = [uuid.UUID(int=n + 1) for n in range(10)]  # the loader's ten
TICKS = os.sysconf("SC_CLK_TCK")
AFTER_RESUME = 5.0  # seconds after a checkpoint whose requests the report counts apart


class RunningClock:
    """The database's clock: ``start`` (read from it) plus the seconds since; :meth:`stop`
    holds it still and :meth:`go` lets it show the time again. Shared with the writers'
    processes (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self, start: datetime):
        self.start = start
        self._began = multiprocessing.Value("d", time.monotonic())
        self._held = multiprocessing.Value("d", math.nan)

    def __call__(self):
        with self._began.get_lock():
            if not math.isnan(self._held.value):
                return self.start + timedelta(seconds=self._held.value)
            return self.start + timedelta(seconds=time.monotonic() - self._began.value)

    def stop(self) -> None:
        with self._began.get_lock():
            self._held.value = time.monotonic() - self._began.value

    def go(self) -> None:
        with self._began.get_lock():
            self._held.value = math.nan


class Writer(multiprocessing.Process):
    """A process of its own (as Omni's pipeline is): inserts ``rate`` events a second in
    batches every tenth of a second, completes the ``received`` ones 2 to 60 seconds later,
    and moves a dead letter every 3 seconds. At the end it deletes what it wrote."""

    def __init__(self, url: str, clock: RunningClock, rate: int):
        super().__init__(name="bench-writer", daemon=True)
        self.url, self.clock, self.rate = url, clock, rate
        self.running, self.idle, self.done = (multiprocessing.Event() for _ in range(3))
        self.running.set()
        self.written, self.completed, self.dead_moves, self.busy_seconds = (
            multiprocessing.Value("d", 0) for _ in range(4)
        )
        self._open: list = []  # a heap of (due instant, id) of the events to complete
        self._dead: list = []
        self._random = random.Random(7)
        self.cleans = True  # deletes what the writers wrote, at the end

    def run(self) -> None:
        engine = make_engine(self.url)
        tick, due = 0, time.monotonic()
        while not self.done.is_set():
            if not self.running.is_set():
                self.idle.set()
                self.running.wait(0.1)
                due = time.monotonic()
                continue
            self.idle.clear()
            started = time.monotonic()
            self._tick(engine, tick)
            self.busy_seconds.value += time.monotonic() - started
            tick += 1
            due += 0.1  # a schedule, not a pause: a slow batch is caught up
            time.sleep(max(0.0, due - time.monotonic()))
        if self.cleans:
            with engine.begin() as conn:
                conn.execute(
                    delete(omni_events).where(omni_events.c.received_at > self.clock.start)
                )
                conn.execute(
                    delete(dead_letter_events).where(dead_letter_events.c.id.in_(self._dead))
                )
        engine.dispose()
        self.idle.set()

    def _tick(self, engine, tick: int) -> None:
        with engine.begin() as conn:
            self._write(conn, tick)

    def _write(self, conn, tick: int) -> None:
        now = self.clock()
        rows = [self._event(now) for _ in range(self.rate // 10)]
        conn.execute(insert(omni_events), rows)
        self.written.value += len(rows)
        due = self._due(now)
        if due:
            conn.execute(
                update(omni_events)
                .where(omni_events.c.id.in_(due))
                .values(status="completed", processed_at=now, processing_time_ms=250)
            )
            self.completed.value += len(due)
        self._move_dead_letters(conn, tick, now)

    def _complete_later(self, arrived, key) -> None:
        """Schedule the completion of event ``key`` 2 to 60 seconds after ``arrived``."""
        due = arrived + timedelta(seconds=self._random.uniform(2, 60))
        heapq.heappush(self._open, (due, key))

    def _due(self, now) -> list:
        """Take the ids of the events due for completion at ``now`` off the schedule."""
        due = []
        while self._open and self._open[0][0] <= now:
            due.append(heapq.heappop(self._open)[1])
        return due

    def _move_dead_letters(self, conn, tick: int, now) -> None:
        if tick % 30 == 0:  # every 3 s: a new dead letter, or one of ours resolved
            if self._dead and tick % 60 == 0:
                key = self._dead[self._random.randrange(len(self._dead))]
                conn.execute(
                    update(dead_letter_events)
                    .where(dead_letter_events.c.id == key)
                    .values(status="resolved", resolved_at=now)
                )
            else:
                key = uuid.uuid4()
                conn.execute(
                    insert(dead_letter_events).values(
                        id=key, event_type="message.received", status="pending", created_at=now
                    )
                )
                self._dead.append(key)
            self.dead_moves.value += 1

    def _event(self, now) -> dict:
        pick = self._random.random()
        key = uuid.uuid4()
        inbound = pick < 0.5
        received = inbound and self._random.random() < 0.5
        if received:
            self._complete_later(now, key)
        instance = self._random.randrange(len(INSTANCES))
        return {
            "id": key,
            "channel": CHANNELS[instance % len(CHANNELS)],
            "instance_id": INSTANCES[instance],
            "event_type": "message.received" if inbound else "message.sent",
            "direction": "inbound" if inbound else "outbound",
            "content_type": "text",
            "status": "received" if received else "completed",
            "received_at": now,
            "processing_time_ms": None if received else 40 + int(pick * 400),
            "created_at": now,
        }

    def pause(self) -> None:
        """Stop after the current tick and wait until it is committed."""
        self.idle.clear()
        self.running.clear()
        self.idle.wait()

    def resume(self) -> None:
        self.running.set()

    def finish(self) -> None:
        """Stop, delete what was written, and wait for the process to end."""
        self.done.set()
        self.running.set()
        self.join()


class Completer(Writer):
    """Beside the pgbench writers, as Omni's pipeline does: completes half of the inbound
    events 2 to 60 seconds after they arrived, one row per statement and transaction, and
    moves the dead letters. It learns the events pgbench wrote by reading the ones still
    ``processing`` from the ``received_at`` index once a second (one statement a second,
    where Omni's pipeline remembers its own). The completions go through psycopg2 and a
    prepared statement, as pgbench's do through libpq: through SQLAlchemy, building each
    ``UPDATE`` took a third of one of the two cores the database and the app share."""

    def __init__(self, url: str, clock: "RunningClock"):
        super().__init__(url, clock, rate=0)
        self.name = "bench-completer"
        self._seen: dict = {}  # id -> received_at, of the last few seconds' events
        self.cpu_share = multiprocessing.Value("d", 0)  # of a core, since its first tick
        self._completing = None  # the psycopg2 cursor of the completions, once connected
        self._began: tuple[float, float] | None = None  # (monotonic, CPU) at the first tick

    def _tick(self, engine, tick: int) -> None:
        now = self.clock()
        self._began = self._began or (time.monotonic(), time.process_time())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if tick % 10 == 0:
                self._learn(conn)
            due = self._due(now)
            completing = self._cursor(engine)
            for key in due:
                completing.execute("EXECUTE complete(%s, %s)", (str(key), now))
            self.completed.value += len(due)
            self._move_dead_letters(conn, tick, now)
        wall, cpu = time.monotonic() - self._began[0], time.process_time() - self._began[1]
        self.cpu_share.value = cpu / wall if wall else 0.0

    def _cursor(self, engine):
        """The completions' cursor, on a connection of its own in autocommit, with the
        statement prepared."""
        if self._completing is None:
            self._connection = engine.raw_connection()  # held: never back in the pool
            self._connection.driver_connection.autocommit = True
            self._completing = self._connection.driver_connection.cursor()
            self._completing.execute(
                "PREPARE complete(uuid, timestamp) AS UPDATE omni_events SET status = "
                "'completed', processed_at = $2, processing_time_ms = 250 WHERE id = $1"
            )
        return self._completing

    def _learn(self, conn) -> None:
        """Schedule the completion of half the events that arrived since the last look
        (looking 2 s back, for those committed after a later one)."""
        since = max(self._seen.values(), default=self.clock.start) - timedelta(seconds=2)
        found = conn.execute(
            select(omni_events.c.id, omni_events.c.received_at).where(
                omni_events.c.received_at > since, omni_events.c.status == "processing"
            )
        ).all()
        for key, at in found:
            if key not in self._seen and self._random.random() < 0.5:
                self._complete_later(at, key)
            self._seen[key] = at
        self._seen = {key: at for key, at in self._seen.items() if at > since}


def pgbench_script() -> str:
    """One event as Omni stores it, every statement a single row in its own transaction:
    an inbound one is inserted ``received`` and moved to ``processing`` at once, an
    outbound one is inserted ``completed``; dated by the database's clock (UTC), instance
    and channel as the loader's."""
    channels = ", ".join(f"'{channel}'" for channel in CHANNELS)
    columns = (
        "id, channel, instance_id, event_type, direction, content_type, status, "
        "processing_time_ms, received_at, created_at"
    )
    common = (
        f"gen_random_uuid(), (ARRAY[{channels}])[:instance::int % {len(CHANNELS)} + 1], "
        "lpad(to_hex(:instance::int + 1), 32, '0')::uuid"
    )
    clock = "now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'"
    return "\n".join(
        [
            f"\\set instance random(0, {len(INSTANCES) - 1})",
            "\\set inbound random(0, 1)",
            "\\set took random(40, 439)",
            "\\if :inbound",
            f"INSERT INTO omni_events ({columns}) VALUES ({common}, 'message.received', "
            f"'inbound', 'text', 'received', NULL, {clock}) RETURNING id \\gset",
            "UPDATE omni_events SET status = 'processing' WHERE id = :id;",
            "\\else",
            f"INSERT INTO omni_events ({columns}) VALUES ({common}, 'message.sent', "
            f"'outbound', 'text', 'completed', :took::int, {clock});",
            "\\endif",
            "",
        ]
    )


def _backend_cpu_seconds(engine) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend behind the engine's pooled
    connection, from /proc (the server runs on this machine)."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Refresher(multiprocessing.Process):
    """A process of its own, as ``flask omni-dashboard refresh --every`` runs beside a host
    in cron mode: refreshes every ``every`` seconds on an engine of its own (one connection
    at a time, so one backend), recording each run's duration and CPU time (the process's
    and its backend's) in :attr:`runs` once it has ended."""

    def __init__(self, url: str, clock, horizon: timedelta, every: float):
        super().__init__(name="bench-refresh", daemon=True)
        self.url, self.clock, self.horizon, self.every = url, clock, horizon, every
        self.done = multiprocessing.Event()
        self._runs: multiprocessing.Queue = multiprocessing.Queue()
        self.runs: list[dict] = []

    def run(self) -> None:
        engine = make_engine(self.url, statement_timeout_ms=0)
        while not self.done.wait(self.every):
            tail_rows = _tail_rows(engine)
            backend = _backend_cpu_seconds(engine)
            own, began = time.process_time(), time.monotonic()
            refresh(engine, self.clock(), self.horizon)
            self._runs.put(
                {
                    "began": began,
                    "seconds": time.monotonic() - began,
                    "cpu": time.process_time() - own + _backend_cpu_seconds(engine) - backend,
                    "tail_rows": (tail_rows, _tail_rows(engine)),
                }
            )
        self._runs.put(None)
        engine.dispose()

    def finish(self) -> None:
        """Stop after the current run and collect every run's record."""
        self.done.set()
        while (run := self._runs.get()) is not None:
            self.runs.append(run)
        self.join()


def _overlapping(spans: list[tuple[float, float]], windows: list[tuple[float, float]], what: str):
    """A line: how many of the slowest 1 % of the timed requests (every call) overlapped
    one of ``windows`` (monotonic start and end), against how many of all of them did:
    whether what happens in them makes the p99."""

    def overlapped(span) -> bool:
        return any(start < span[1] and span[0] < end for start, end in windows)

    slowest = sorted(spans, key=lambda span: span[0] - span[1])[: max(1, len(spans) // 100)]
    share = sum(map(overlapped, spans)) / len(spans) * 100
    return (
        f"- requests that overlapped {what}: {sum(map(overlapped, slowest))} of the "
        f"slowest {len(slowest)} (the slowest 1 %), against {share:.0f} % of all "
        f"{len(spans):,}"
    )


def _tail_rows(engine) -> tuple[int, int]:
    """Rows of the kept tail tables, and events received from the tail's cut on (read raw
    from ``omni_events`` by every read of the tail): counted from the tables and the index,
    not through the views, which would aggregate the young rows again five times."""
    with engine.connect() as conn:
        kept = sum(
            conn.execute(select(func.count()).select_from(kind.table("kept"))).scalar()
            for kind in TAILS
        )
        # The cut through its stable function, as the views read it (a subquery would be
        # planned for a third of omni_events, with parallel workers).
        young = select(func.count()).where(omni_events.c.received_at >= tail.cut_at())
        return kept, conn.execute(young).scalar()


class Writers:
    """Writer processes started, paused, resumed and finished together; their counts summed.
    A checkpoint is :meth:`due` every ``every`` seconds of writing."""

    def __init__(self, processes: list[Writer], every: float):
        self.processes, self.every = processes, every

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def total(self, counter: str) -> float:
        return sum(getattr(p, counter).value for p in self.processes)

    def start(self) -> None:
        for process in self.processes:
            process.start()
        self._next = time.monotonic() + self.every

    def pause(self) -> None:
        for process in self.processes:
            process.idle.clear()
            process.running.clear()
        for process in self.processes:
            process.idle.wait()

    def resume(self) -> None:
        for process in self.processes:
            process.resume()
        self._next = time.monotonic() + self.every

    def finish(self) -> None:
        """Stop them, the one that deletes what they wrote last."""
        for process in sorted(self.processes, key=lambda p: p.cleans):
            process.finish()


class PgbenchWriters(Writers):
    """Omni's single-row writes from ``clients`` pgbench connections (libpq in C, so that
    the writers take little of the cores the database shares), ``rate`` events a second,
    in runs that end at each checkpoint (its pause) and at ``ends``; events more than a
    second behind pgbench's schedule are skipped and counted, not caught up. A
    :class:`Completer` completes and moves dead letters beside them."""

    def __init__(self, url: str, clock, rate: int, clients: int, every: float, ends: float):
        super().__init__([Completer(url, clock)], every)
        self.url, self.rate, self.clients, self.ends = url, rate, clients, ends
        self.counts = {"processed": 0, "skipped": 0, "seconds": 0.0, "cpu": 0.0, "lag": 0.0}
        self._script = Path(tempfile.mkdtemp()) / "event.sql"
        self._script.write_text(pgbench_script())
        self._run: subprocess.Popen | None = None

    def start(self) -> None:
        super().start()
        self._begin()

    def due(self) -> bool:
        return self._run.poll() is not None

    def pause(self) -> None:
        self._end()
        super().pause()

    def resume(self) -> None:
        super().resume()
        self._begin()

    def finish(self) -> None:
        self._end()
        super().finish()

    def total(self, counter: str) -> float:
        if counter == "written":
            return self.counts["processed"]
        return super().total(counter)

    def _begin(self) -> None:
        seconds = max(1, math.ceil(min(self.every, self.ends - time.monotonic())))
        self._started = time.monotonic()
        # Children's CPU counts once they are reaped (by due()'s poll, or here at the end).
        self._usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._run = subprocess.Popen(
            [
                *("pgbench", "-n", "-M", "prepared", "-f", str(self._script)),
                *("-c", str(self.clients), "-j", str(min(self.clients, 2))),
                *("--rate", str(self.rate), "--latency-limit", "1000", "-T", str(seconds)),
                libpq_dsn(self.url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _end(self) -> None:
        """Wait for the current run to end and add up what it reports."""
        if self._run is None:
            return
        run, self._run = self._run, None
        output, _ = run.communicate()
        before, after = self._usage, resource.getrusage(resource.RUSAGE_CHILDREN)
        if run.returncode != 0:
            raise SystemExit(f"pgbench failed:\n{output}")
        self.counts["seconds"] += time.monotonic() - self._started
        self.counts["cpu"] += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        lag = re.search(r"schedule lag: avg [\d.]+ \(max ([\d.]+)\)", output)
        self.counts["lag"] = max(self.counts["lag"], float(lag.group(1)) if lag else 0.0)
        for key, pattern in (
            ("processed", r"actually processed: (\d+)"),
            ("skipped", r"skipped: (\d+)"),
        ):
            found = re.search(pattern, output)
            self.counts[key] += int(found.group(1)) if found else 0


def _machine_busy(since: tuple[int, int] | None = None):
    """The jiffies the machine's cores spent busy and in all, from /proc/stat; given an
    earlier reading, the busy share since."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    now = (sum(fields) - fields[3] - fields[4], sum(fields))  # all but idle and iowait
    if since is None:
        return now
    return (now[0] - since[0]) / max(1, now[1] - since[1])


def _scalar(url: str, sql: str):
    """One value the server answers to ``sql`` (``None`` for a command), on an engine
    opened for it, in autocommit and without a statement timeout."""
    engine = make_engine(url, statement_timeout_ms=0)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            result = conn.execute(text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _flush(url: str) -> None:
    """PostgreSQL's CHECKPOINT: the run starts from a flushed database, not in the
    checkpoint a load's (or the last run's) writes would set off in its first minutes."""
    _scalar(url, "CHECKPOINT")


def database_clock(url: str) -> datetime:
    """The database's clock (UTC, as Omni dates its rows), to the second."""
    found = _scalar(url, "SELECT clock_timestamp() AT TIME ZONE 'UTC'")
    return found.replace(microsecond=0)


def _autovacuum(url: str) -> str:
    """The server's autovacuum setting (``on`` or ``off``): it decides how many dead rows
    of ``omni_events`` the young rows' index scans pass."""
    return _scalar(url, "SHOW autovacuum")


def _checkpoint(apps: dict, clock, writer, compared: list[tuple[str, str]]) -> int:
    """Writer paused and clock stopped: the number of calls that differ on and off."""
    writer.pause()
    clock.stop()
    try:
        return sum(_body(apps["on"], path) != _body(apps["off"], path) for _, path in compared)
    finally:
        clock.go()
        writer.resume()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=200, help="events written per second")
    parser.add_argument(
        "--single-row-writers",
        type=int,
        default=0,
        help="write as Omni does, one row per statement and transaction, from this many "
        "pgbench connections (default: one process inserting batches)",
    )
    parser.add_argument(
        "--load",
        type=int,
        metavar="EVENTS",
        help="first load this many events over --days, ending at the database's clock, and "
        "refresh the rollups from scratch (default: the database as it is)",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=90,
        help="the span of the loaded events (0.0834 with --load 14400000: the two hours "
        "before the clock at 2,000 events/s, so that the last hour is as dense as the ingest)",
    )
    parser.add_argument("--refresh-seconds", type=float, default=15)
    parser.add_argument("--checkpoint-seconds", type=float, default=120)
    parser.add_argument("--horizon-minutes", type=int, default=30)
    parser.add_argument(
        "--warm-up-seconds",
        type=float,
        default=30,
        help="seconds of ingest and refreshes, every call made but not timed, before the "
        "timing starts (an app's first calls build their statements and learn their "
        "questions); less than --checkpoint-seconds",
    )
    parser.add_argument(
        "--tail-margin-seconds",
        type=int,
        help="OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS (default: the plugin's)",
    )
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument(
        "--section",
        help="the section of docs/performance.md that --write replaces (default: steady, or "
        "steady-single-row with --single-row-writers)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.warm_up_seconds < args.checkpoint_seconds:
        parser.error("--warm-up-seconds must be at least 0 and less than --checkpoint-seconds")

    margin = (
        {"OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS": args.tail_margin_seconds}
        if args.tail_margin_seconds is not None
        else {}
    )
    if args.load:
        ensure_database(args.database_url)  # before its clock is read
        prepare(
            args.database_url,
            args.load,
            args.days,
            False,
            args.horizon_minutes,
            now=database_clock(args.database_url),
            **margin,
        )
    clock = RunningClock(database_clock(args.database_url))
    # How dense the last hour is when the run starts: the rows of every last-hour window.
    last_hour = _scalar(
        args.database_url,
        "SELECT count(*) FROM omni_events WHERE received_at >= "
        f"TIMESTAMP '{clock.start - timedelta(hours=1)}'",
    )
    compared = calls(clock.start)  # every call, compared on and off at each checkpoint
    timed = [
        *compared[:4],
        compared[5],  # one scrape
        # The host's own: one request through the same stack and one statement, to tell
        # what the machine's load does to any request from what the plugin's reads cost.
        ("GET /api/v2/health (the host's own, for comparison)", "/api/v2/health"),
    ]
    common = {"OMNI_CLOCK": clock, "OMNI_DASHBOARD_CACHE_SECONDS": 0}
    apps = {
        "on": bench_app(
            args.database_url,
            **common,
            OMNI_DASHBOARD_ROLLUPS="on",
            OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
            OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=args.horizon_minutes,
            **margin,
        ),
        "off": bench_app(args.database_url, **common),
    }
    freeze_loaded_heap()  # as the reference host's workers do once the app is loaded
    _flush(args.database_url)
    began = time.monotonic() + args.warm_up_seconds  # when the timing starts
    if args.single_row_writers:
        writer = PgbenchWriters(
            args.database_url,
            clock,
            args.rate,
            args.single_row_writers,
            args.checkpoint_seconds,
            ends=began + args.minutes * 60,
        )
    else:
        writer = Writers([Writer(args.database_url, clock, args.rate)], args.checkpoint_seconds)
    horizon = timedelta(minutes=args.horizon_minutes)
    refresher = Refresher(args.database_url, clock, horizon, args.refresh_seconds)
    differences, checkpoints = 0, 0
    samples: dict[str, list[float]] = {label: [] for label, _ in timed}
    client = apps["on"].test_client()
    writer.start()
    refresher.start()
    while time.monotonic() < began:  # the warm-up: every call, untimed
        for _, path in timed:
            client.get(path, headers={"x-api-key": KEY})
            time.sleep(0.05)
    busy = _machine_busy()
    paused = 0.0
    minutes: list[list[float]] = []  # the plain dashboard's samples, minute by minute
    spans: list[tuple[float, float]] = []  # every timed request's (start, end), monotonic
    resumed: list[float] = []  # when the writers resumed after each checkpoint
    try:
        while time.monotonic() - began < args.minutes * 60:
            for label, path in timed:
                started, since = time.perf_counter(), time.monotonic()
                response = client.get(path, headers={"x-api-key": KEY})
                elapsed_ms = (time.perf_counter() - started) * 1000
                samples[label].append(elapsed_ms)
                spans.append((since, time.monotonic()))
                if label == timed[0][0]:
                    minute = int((time.monotonic() - began - paused) // 60)
                    minutes += [[] for _ in range(minute + 1 - len(minutes))]
                    minutes[minute].append(elapsed_ms)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")
                time.sleep(0.05)
            if writer.due():
                stopped = time.monotonic()
                differences += _checkpoint(apps, clock, writer, compared)
                paused += time.monotonic() - stopped
                checkpoints += 1
                resumed.append(time.monotonic())
        stopped = time.monotonic()
        differences += _checkpoint(apps, clock, writer, compared)
        paused += time.monotonic() - stopped
        checkpoints += 1
    finally:
        refresher.finish()
        writer.finish()
    running = time.monotonic() - began - paused

    runs = [run for run in refresher.runs if run["began"] >= began]  # timed ones
    cpu = sum(run["cpu"] for run in runs)
    written = int(writer.total("written"))
    pattern = (
        f"{args.single_row_writers} pgbench connections wrote {written:,} events one row per "
        f"statement and transaction ({written / writer.counts['seconds']:.0f}/s of "
        f"{args.rate:,} asked; at most {writer.counts['lag']:.0f} ms behind the schedule, "
        f"{writer.counts['skipped']:,} skipped for more than 1 s; pgbench "
        f"used {writer.counts['cpu'] / running * 100:.0f} % of a core), moving the inbound "
        "ones to processing at once; a process (psycopg2, "
        f"{writer.total('cpu_share') * 100:.0f} % of a core) completed "
        if args.single_row_writers
        else f"a writer process inserted {written:,} events in batches ({written / running:.0f}"
        f"/s, busy {writer.total('busy_seconds') / running * 100:.0f} % of the time), completed "
    )
    lines = [
        f"{running / 60:.1f} minutes of ingest (and {paused:.0f} s of checkpoints) after "
        f"{args.warm_up_seconds:.0f} s of warm-up on "
        f"`{make_url(args.database_url).database}` ({last_hour:,} events in the hour before "
        f"the start); {pattern}{int(writer.total('completed')):,} of "
        f"them 2 to 60 s after they arrived, and changed {int(writer.total('dead_moves'))} dead "
        "letters; the refresh "
        f"ran every {args.refresh_seconds:.0f} s "
        f"(horizon {args.horizon_minutes} min, tail margin "
        f"{apps['on'].extensions['omni_dashboard'].rollups.settings.tail_margin_seconds} s); "
        "Flask test client in-process (the heap frozen once the apps were loaded, as the "
        "reference host's gunicorn workers freeze theirs), PostgreSQL 15 (autovacuum "
        f"{_autovacuum(args.database_url)}), "
        "2 cores.",
        "",
        "| call (rollups on, under ingest) | p50 (ms) | p95 (ms) | p99 (ms) | requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, values in samples.items():
        lines.append(
            f"| {label} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} | "
            f"{percentile(values, 0.99):.1f} | {len(values)} |"
        )
    lines += [
        "",
        f"- refresh: {len(runs)} runs, "
        + (
            f"{percentile([r['seconds'] for r in runs], 0.5) * 1000:.0f} ms per run (p50), "
            f"{max(r['seconds'] for r in runs) * 1000:.0f} ms at most; its CPU (the process and "
            f"its PostgreSQL backend) {cpu:.1f} s, {cpu / (running * 2) * 100:.2f} % of the "
            "two cores over the run"
            if runs
            else "none"
        ),
        "- rows of the kept tail tables before / after each fold (p50 and most): "
        + (
            f"{percentile([r['tail_rows'][0][0] for r in runs], 0.5):,.0f} / "
            f"{percentile([r['tail_rows'][1][0] for r in runs], 0.5):,.0f}, at most "
            f"{max(r['tail_rows'][0][0] for r in runs):,} / "
            f"{max(r['tail_rows'][1][0] for r in runs):,}; events received from the cut "
            "on (read raw by every read of the tail) before / after each fold (p50): "
            f"{percentile([r['tail_rows'][0][1] for r in runs], 0.5):,.0f} / "
            f"{percentile([r['tail_rows'][1][1] for r in runs], 0.5):,.0f}"
            if runs
            else "no fold"
        ),
        _overlapping(
            spans, [(r["began"], r["began"] + r["seconds"]) for r in runs], "a refresh run"
        ),
        _overlapping(
            spans,
            [(t, t + AFTER_RESUME) for t in resumed],
            f"the first {AFTER_RESUME:.0f} s after a checkpoint (writers back, their "
            "connections new)",
        ),
        f"- the machine's cores were busy {_machine_busy(busy) * 100:.0f} % of the run "
        "(every process, the database's included)",
        f"- checkpoints (writer paused, clock stopped, every call on and off): {checkpoints}, "
        f"differences: {differences}",
        "- the plain dashboard's p50 / p99 minute by minute: "
        + ", ".join(
            f"{percentile(m, 0.5):.0f} / {percentile(m, 0.99):.0f}" for m in minutes if len(m) > 1
        )
        + " ms",
    ]
    section = args.section or ("steady-single-row" if args.single_row_writers else "steady")
    publish(section, lines, args.write)
    if differences:
        raise SystemExit(f"{differences} responses differed between rollups on and off")


if __name__ == "__main__":
    main()
