"""Steady state: the dashboard timed while a writer ingests and the refresh runs on its own.

    python -m bench.steady --database-url postgresql://root@127.0.0.1/omni_bench_10000000 \
        --minutes 10 --rate 200 --write

    python -m bench.steady --database-url postgresql://root@127.0.0.1/omni_bench_10000000 \
        --minutes 5 --rate 2000 --single-row-writers 8 --refresh-seconds 2 --write

On a database loaded by ``bench.rollups`` (its clock, ``NOW``, is where the data ends), the
clock runs from ``NOW`` in real time. A writer process inserts ``--rate`` events a second
(half of the inbound ones arrive ``received`` and are completed 2 to 60 seconds later, as
Omni's pipeline does, within the rollups' horizon) in batches and moves a dead letter now
and then; with ``--single-row-writers N``, N processes write as Omni does instead, one row
per statement and transaction (see :class:`SingleRowWriter`). A refresh thread rolls up
what closed every ``--refresh-seconds`` (15: what ``flask omni-dashboard refresh --every
15`` does beside a host in cron mode), on a connection of its own, whose PostgreSQL
backend's CPU time is read from /proc. Meanwhile the main thread times the calls
round-robin. Every ``--checkpoint-seconds`` the writer pauses, the clock stops, and every
call is compared with rollups on and off (they must be equal); then all resume. At the end
the rows the writer added are deleted again, so that ``bench.rollups --reuse`` still finds
the database it loaded.
"""

import argparse
import math
import multiprocessing
import os
import random
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, insert, select, text, update

from host_example.db import make_engine
from host_example.tables import CHANNELS, dead_letter_events, omni_events
from omni_dashboard_plugin.rollups.kinds import TAILS
from omni_dashboard_plugin.rollups.refresh import refresh

from .harness import KEY, NOW, bench_app, percentile
from .report import publish
from .rollups import CALLS, _body

TIMED = [*CALLS[:4], CALLS[5]]  # and one scrape
INSTANCES = [uuid.UUID(int=n + 1) for n in range(10)]  # the loader's ten
TICKS = os.sysconf("SC_CLK_TCK")


class RunningClock:
    """``NOW`` plus the seconds since the start; :meth:`stop` holds it still. Shared with
    the writer's process (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self):
        self._began = multiprocessing.Value("d", time.monotonic())
        self._held = multiprocessing.Value("d", math.nan)

    def __call__(self):
        with self._began.get_lock():
            if not math.isnan(self._held.value):
                return NOW + timedelta(seconds=self._held.value)
            return NOW + timedelta(seconds=time.monotonic() - self._began.value)

    def stop(self) -> None:
        with self._began.get_lock():
            self._held.value = time.monotonic() - self._began.value

    def go(self) -> None:
        """Run on from where it stopped."""
        with self._began.get_lock():
            self._began.value = time.monotonic() - self._held.value
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
        self._open: list = []  # (due instant, id) of events still `received`
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
                conn.execute(delete(omni_events).where(omni_events.c.received_at > NOW))
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
        due = [key for at, key in self._open if at <= now]
        if due:
            conn.execute(
                update(omni_events)
                .where(omni_events.c.id.in_(due))
                .values(status="completed", processed_at=now, processing_time_ms=250)
            )
            self._open = [(at, key) for at, key in self._open if at > now]
            self.completed.value += len(due)
        self._move_dead_letters(conn, tick, now)

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
            self._open.append((now + timedelta(seconds=self._random.uniform(2, 60)), key))
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


class SingleRowWriter(Writer):
    """Omni's own write pattern, one of ``writers`` processes writing ``rate / writers``
    events a second: every statement a single row in its own transaction. An inbound event
    is inserted ``received`` and moved to ``processing`` at once, half of them then to
    ``completed`` 2 to 60 seconds later (the rest stay ``processing``); an outbound one is inserted
    ``completed``. The first process also moves the dead letters."""

    def __init__(self, url: str, clock: RunningClock, rate: int, index: int, writers: int):
        super().__init__(url, clock, rate // writers)
        self.name, self.index = f"bench-writer-{index}", index
        self._random = random.Random(7 + index)
        self.cleans = index == 0  # once the others have stopped (Writers.finish)

    def _tick(self, engine, tick: int) -> None:
        now = self.clock()
        raw = engine.raw_connection()
        try:
            raw.driver_connection.autocommit = True
            cursor = raw.cursor()
            for _ in range(self.rate // 10):
                row = {
                    k: str(v) if isinstance(v, uuid.UUID) else v
                    for k, v in self._event(now).items()
                }
                if row["direction"] == "inbound":
                    row["status"], row["processing_time_ms"] = "received", None
                cursor.execute(_SINGLE_INSERT, row)
                if row["status"] == "received":
                    cursor.execute(_SINGLE_MOVE, {"id": row["id"]})
                self.written.value += 1
            due = [key for at, key in self._open if at <= now]
            for key in due:
                cursor.execute(_SINGLE_COMPLETE, {"id": str(key), "now": now})
            self._open = [(at, key) for at, key in self._open if at > now]
            self.completed.value += len(due)
            raw.driver_connection.autocommit = False
        finally:
            raw.close()
        if self.index == 0:
            with engine.begin() as conn:
                self._move_dead_letters(conn, tick, now)


_SINGLE_INSERT = (
    "INSERT INTO omni_events (id, channel, instance_id, event_type, direction, content_type, "
    "status, received_at, processing_time_ms, created_at) VALUES (%(id)s, %(channel)s, "
    "%(instance_id)s, %(event_type)s, %(direction)s, %(content_type)s, %(status)s, "
    "%(received_at)s, %(processing_time_ms)s, %(created_at)s)"
)
_SINGLE_MOVE = "UPDATE omni_events SET status = 'processing' WHERE id = %(id)s"
_SINGLE_COMPLETE = (
    "UPDATE omni_events SET status = 'completed', processed_at = %(now)s, "
    "processing_time_ms = 250 WHERE id = %(id)s"
)


def _backend_cpu_seconds(engine) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend behind the engine's pooled
    connection, from /proc (the server runs on this machine)."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Refresher(threading.Thread):
    """Refreshes every ``every`` seconds on an engine of its own (one connection at a time,
    so one backend), recording each run's duration and CPU time (this thread's and its
    backend's)."""

    def __init__(self, url: str, clock, horizon: timedelta, every: float):
        super().__init__(name="bench-refresh", daemon=True)
        self.engine = make_engine(url, statement_timeout_ms=0)
        self.clock, self.horizon, self.every = clock, horizon, every
        self.done = threading.Event()
        self.runs: list[dict] = []

    def run(self) -> None:
        while not self.done.wait(self.every):
            tail_rows = self._tail_rows()
            backend = _backend_cpu_seconds(self.engine)
            own, began = time.thread_time(), time.monotonic()
            report = refresh(self.engine, self.clock(), self.horizon)
            self.runs.append(
                {
                    "seconds": time.monotonic() - began,
                    "cpu": time.thread_time() - own + _backend_cpu_seconds(self.engine) - backend,
                    "chunks": report.chunks,
                    "tail_rows": (tail_rows, self._tail_rows()),
                }
            )

    def _tail_rows(self) -> int:
        """Rows of the kept tail tables (what a read of the tail scans at most)."""
        with self.engine.connect() as conn:
            return sum(
                conn.execute(select(func.count()).select_from(kind.table("tail"))).scalar()
                for kind in TAILS
            )


class Writers:
    """Writer processes started, paused, resumed and finished together; their counts summed."""

    def __init__(self, processes: list[Writer]):
        self.processes = processes

    def total(self, counter: str) -> float:
        return sum(getattr(p, counter).value for p in self.processes)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def pause(self) -> None:
        for process in self.processes:
            process.idle.clear()
            process.running.clear()
        for process in self.processes:
            process.idle.wait()

    def resume(self) -> None:
        for process in self.processes:
            process.resume()

    def finish(self) -> None:
        """Stop them, the one that deletes what they wrote last."""
        for process in sorted(self.processes, key=lambda p: p.cleans):
            process.finish()


def _checkpoint(apps: dict, clock, writer) -> int:
    """Writer paused and clock stopped: the number of calls that differ on and off."""
    writer.pause()
    clock.stop()
    try:
        return sum(_body(apps["on"], path) != _body(apps["off"], path) for _, path in CALLS)
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
        "processes (default: one process inserting batches)",
    )
    parser.add_argument("--refresh-seconds", type=float, default=15)
    parser.add_argument("--checkpoint-seconds", type=float, default=120)
    parser.add_argument("--horizon-minutes", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)

    clock = RunningClock()
    common = {"OMNI_CLOCK": clock, "OMNI_DASHBOARD_CACHE_SECONDS": 0}
    apps = {
        "on": bench_app(
            args.database_url,
            **common,
            OMNI_DASHBOARD_ROLLUPS="on",
            OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
            OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=args.horizon_minutes,
        ),
        "off": bench_app(args.database_url, **common),
    }
    if args.single_row_writers:
        n = args.single_row_writers
        writer = Writers(
            [SingleRowWriter(args.database_url, clock, args.rate, i, n) for i in range(n)]
        )
    else:
        writer = Writers([Writer(args.database_url, clock, args.rate)])
    horizon = timedelta(minutes=args.horizon_minutes)
    refresher = Refresher(args.database_url, clock, horizon, args.refresh_seconds)
    differences, checkpoints = 0, 0
    samples: dict[str, list[float]] = {label: [] for label, _ in TIMED}
    client = apps["on"].test_client()
    began = time.monotonic()
    writer.start()
    refresher.start()
    next_checkpoint = began + args.checkpoint_seconds
    paused = 0.0
    minutes: list[list[float]] = []  # the plain dashboard's samples, minute by minute
    try:
        while time.monotonic() - began < args.minutes * 60:
            for label, path in TIMED:
                started = time.perf_counter()
                response = client.get(path, headers={"x-api-key": KEY})
                elapsed_ms = (time.perf_counter() - started) * 1000
                samples[label].append(elapsed_ms)
                if label == TIMED[0][0]:
                    minute = int((time.monotonic() - began - paused) // 60)
                    minutes += [[] for _ in range(minute + 1 - len(minutes))]
                    minutes[minute].append(elapsed_ms)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")
                time.sleep(0.05)
            if time.monotonic() >= next_checkpoint:
                stopped = time.monotonic()
                differences += _checkpoint(apps, clock, writer)
                paused += time.monotonic() - stopped
                checkpoints += 1
                next_checkpoint = time.monotonic() + args.checkpoint_seconds
        stopped = time.monotonic()
        differences += _checkpoint(apps, clock, writer)
        paused += time.monotonic() - stopped
        checkpoints += 1
    finally:
        refresher.done.set()
        refresher.join()
        writer.finish()
    running = time.monotonic() - began - paused

    runs = refresher.runs
    cpu = sum(run["cpu"] for run in runs)
    written = int(writer.total("written"))
    pattern = (
        f"{len(writer.processes)} writer processes inserted {written:,} events one row per "
        f"statement and transaction ({written / running:.0f}/s, each busy "
        f"{writer.total('busy_seconds') / len(writer.processes) / running * 100:.0f} % of "
        "the time), moved the inbound ones to processing at once and completed "
        if args.single_row_writers
        else f"a writer process inserted {written:,} events in batches ({written / running:.0f}"
        f"/s, busy {writer.total('busy_seconds') / running * 100:.0f} % of the time), completed "
    )
    lines = [
        f"{running / 60:.1f} minutes of ingest (and {paused:.0f} s of checkpoints) on "
        f"`{refresher.engine.url.database}`; {pattern}{int(writer.total('completed')):,} of "
        f"them 2 to 60 s after they arrived, and changed {int(writer.total('dead_moves'))} dead "
        "letters; the refresh "
        f"ran every {args.refresh_seconds:.0f} s "
        f"(horizon {args.horizon_minutes} min); Flask test client in-process, PostgreSQL 15, "
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
            f"{max(r['seconds'] for r in runs) * 1000:.0f} ms at most; its CPU (the thread and "
            f"its PostgreSQL backend) {cpu:.1f} s, {cpu / (running * 2) * 100:.2f} % of the "
            "two cores over the run"
            if runs
            else "none"
        ),
        "- rows of the kept tail tables before / after each fold (p50 and most): "
        + (
            f"{percentile([r['tail_rows'][0] for r in runs], 0.5):,.0f} / "
            f"{percentile([r['tail_rows'][1] for r in runs], 0.5):,.0f}, at most "
            f"{max(r['tail_rows'][0] for r in runs):,} / {max(r['tail_rows'][1] for r in runs):,}"
            if runs
            else "no fold"
        ),
        f"- checkpoints (writer paused, clock stopped, every call on and off): {checkpoints}, "
        f"differences: {differences}",
        "- the plain dashboard's p50 / p99 minute by minute: "
        + ", ".join(
            f"{percentile(m, 0.5):.0f} / {percentile(m, 0.99):.0f}" for m in minutes if len(m) > 1
        )
        + " ms",
    ]
    publish("steady", lines, args.write)
    if differences:
        raise SystemExit(f"{differences} responses differed between rollups on and off")


if __name__ == "__main__":
    main()
