"""Incremental refresh: roll closed slots up to the horizon, one transaction per chunk.

Each chunk deletes and re-inserts its slot rows, rolls up the hours and days the chunk
completes, and advances the watermark, all in one transaction. A refresh killed midway
therefore leaves either the whole chunk or none of it, and running refresh again (or in
several processes at once) never counts a row twice: PostgreSQL serializes refreshers with
a transaction-level advisory lock, SQLite with ``BEGIN IMMEDIATE``.

A chunk runs from the watermark to the end of the UTC day (of the ``chunk_slots`` group)
holding the next source row, which index probes find: an empty stretch, the decades
between an ancient row and the rest, say, costs no chunk of its own, so the cost follows
the rows and the slots that hold them, not the calendar. On SQLite, whose writers take
turns, a chunk also stops before the ``SQLITE_CHUNK_ROWS`` + 1-th row of any source (one
slot at least), and the refresh sleeps between its transactions long enough for a host
writer waiting on its busy timeout to take the lock.

Every statement is built once per shape, with the bounds as parameters.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import (
    String,
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    true,
    union_all,
    update,
)

from ..grid import SLOTS_PER_DAY, slot_of, slot_time
from ..sql.built import built
from ..sql.snapshot import unlimited
from . import dead_letter_counts, fine, tail
from .kinds import BY_NAME, KINDS, TAILS, state
from .locks import REFRESH as LOCK_KEY
from .plan import LEVELS, split
from .rehearsal import rehearse
from .source import by_slot
from .state import STATE_NAME, horizon_slot, oldest_slot, read_watermark, total_name
from .vacuum import vacuum_churned

# SQLite: the rows of each source one chunk (one hold of the write lock) rolls at most.
SQLITE_CHUNK_ROWS = 500


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh call did."""

    chunks: int
    watermark_slot: int | None
    busy: bool = False

    @property
    def watermark(self) -> datetime | None:
        """The watermark as an instant (rows before it are rolled up)."""
        return None if self.watermark_slot is None else slot_time(self.watermark_slot)


class RefreshBusy(RuntimeError):
    """Another process holds the refresh lock."""


def _locked(connection) -> bool:
    """Open the chunk's transaction; False when another process is refreshing.

    PostgreSQL runs it READ COMMITTED, so that the statements after the lock see what the
    previous lock holder committed.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return True
    connection.execution_options(isolation_level="READ COMMITTED")
    return bool(
        connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}
        ).scalar_one()
    )


def _statement(key: tuple, build, *args):
    """The refresh's statement for ``key``, built once by ``build(*args)`` (see
    :func:`..sql.built.built`)."""
    return built(("refresh", *key), lambda: build(*args))


def _sources() -> tuple:
    """One kind per source table and time column (each source's rows, by their time)."""
    found: dict = {}
    for kind in KINDS:
        found.setdefault((kind.source.name, kind.time.name), kind)
    return tuple(found.values())


SOURCES = _sources()


def _first_slot(connection, target: int) -> int:
    """Where rolling starts: the slot of the oldest row of any source, at most ``target``."""
    found = [oldest_slot(connection, kind) for kind in SOURCES]
    return min([slot for slot in found if slot is not None] + [target])


def _next_row(kind):
    """SELECT the time of the source's first row at or after ``:since``."""
    return select(func.min(kind.time)).where(kind.time >= bindparam("since"))


def _row_at_offset(kind):
    """SELECT the time of the source's ``:rows`` + 1-th row at or after ``:since``."""
    return (
        select(kind.time)
        .where(kind.time >= bindparam("since"))
        .order_by(kind.time)
        .limit(1)
        .offset(bindparam("rows"))
    )


def _next_row_slot(connection, low: int) -> int | None:
    """The first slot from ``low`` on that holds a row of any source (an index probe per
    source), or ``None``."""
    found = []
    for kind in SOURCES:
        statement = _statement(("next", kind.name), _next_row, kind)
        moment = connection.execute(statement, {"since": slot_time(low)}).scalar()
        if moment is not None:
            found.append(slot_of(moment))
    return min(found, default=None)


def _row_bound(connection, low: int, rows: int) -> int | None:
    """The first slot that holds the ``rows`` + 1-th row from ``low`` on of some source
    (the slots before it hold at most ``rows`` rows of each), or ``None``."""
    found = []
    for kind in SOURCES:
        statement = _statement(("row bound", kind.name), _row_at_offset, kind)
        moment = connection.execute(statement, {"since": slot_time(low), "rows": rows}).scalar()
        if moment is not None:
            found.append(slot_of(moment))
    return min(found, default=None)


def _chunk_end(connection, low: int, target: int, chunk_slots: int, rows: int | None) -> int:
    """Where the chunk from ``low`` ends: at the end of the ``chunk_slots`` group holding the
    next row (``target`` when no row comes before it), and with ``rows`` before the slot
    of the ``rows`` + 1-th row of a source, one slot at least."""
    first = _next_row_slot(connection, low)
    if first is None or first >= target:
        return target
    high = min(target, (first // chunk_slots + 1) * chunk_slots)
    if rows is not None:
        bound = _row_bound(connection, low, rows)
        if bound is not None:
            high = min(high, max(bound, first + 1))
    return high


def _floor_div(column, width: int):
    """``floor(column / width)`` in SQL, also for buckets before 1970 (integer division
    truncates toward zero in SQLite and PostgreSQL)."""
    return (column - (column % width + width) % width) // width


def _summed(kind, table, width: int = 1):
    """SELECT bucket, dims, sums of the kind's measures over ``table``'s rows of buckets
    ``[:low, :high)``, per bucket of a level ``width`` times coarser."""
    dims = [table.c[d] for d in kind.dims]
    bucket = table.c.bucket if width == 1 else _floor_div(table.c.bucket, width)
    query = select(bucket, *dims, *(func.sum(table.c[m]) for m in kind.measures)).where(
        table.c.bucket >= bindparam("low"), table.c.bucket < bindparam("high")
    )
    return query.group_by(bucket, *dims)


def _clear(table):
    """DELETE the rows of buckets ``[:low, :high)``."""
    return delete(table).where(
        table.c.bucket >= bindparam("low"), table.c.bucket < bindparam("high")
    )


def _filled(kind, table, source):
    """INSERT the rows of ``source`` (bucket, dims, measures) into ``table``."""
    return insert(table).from_select(["bucket", *kind.dims, *kind.measures], source)


def _slot_rows(kind, table, kept: bool):
    """INSERT into ``table`` the kind's slot rows of ``[:low, :high)``: summed from the slot
    rows of the kind it is rolled from; or, ``kept``, from its tail's view, whose rows sum
    slot by slot to the source's (see .tail: a few rows a slot); else from its source rows
    (of ``[:since, :before)``: every row of the slots)."""
    if kind.rolled_from is not None:
        return _filled(kind, table, _summed(kind, BY_NAME[kind.rolled_from].table("slot")))
    if kept:
        assert kind.tail is not None  # kept only for a kind with a tail
        return _filled(kind, table, _summed(kind, kind.tail.table("tail")))
    return _filled(kind, table, by_slot(kind, bindparam("since"), bindparam("before")))


def _roll_slots(connection, low: int, high: int) -> None:
    """Roll the slots ``[low, high)`` of every kind; a kind with a tail from its view when
    the tail keeps them (from its first slot, at or before ``low``, on): at thousands of
    events a second a slot holds millions of rows, scanned once per kind."""
    bounds = {"low": low, "high": high, "since": slot_time(low), "before": slot_time(high)}
    mark = read_watermark(connection)
    tailed = mark is not None and mark.tail is not None and mark.tail <= low
    for kind in KINDS:
        table = kind.table("slot")
        kept = tailed and kind.rolled_from is None and kind.tail is not None
        connection.execute(_statement(("clear", kind.name, "slot"), _clear, table), bounds)
        rows = _statement(("slot", kind.name, kept), _slot_rows, kind, table, kept)
        connection.execute(rows, bounds)


def _level_rows(kind, level: str, finer: str, width: int):
    """INSERT into the kind's ``level`` table its ``finer`` rows of ``[:low, :high)``
    summed per ``level`` bucket (``width`` of them)."""
    return _filled(kind, kind.table(level), _summed(kind, kind.table(finer), width))


def _roll_level(connection, level: str, finer: str, low: int, high: int, width: int) -> None:
    """Roll the ``level`` buckets ``[low, high)`` up from the ``finer`` level's rows (a
    ``level`` bucket holds ``width`` of them)."""
    for kind in KINDS:
        table = kind.table(level)
        cleared = _statement(("clear", kind.name, level), _clear, table)
        connection.execute(cleared, {"low": low, "high": high})
        statement = _statement((level, kind.name, width), _level_rows, kind, level, finer, width)
        connection.execute(statement, {"low": low * width, "high": high * width})


def _roll_whole(connection, low: int, high: int, start: int) -> None:
    """Roll up each level's buckets (hours, then the day) that the slots ``[low, high)``
    complete, those from ``start`` on (a bucket that begins before the first rolled slot is
    never whole), each from the next finer level."""
    finer, finer_width = "slot", 1
    for level, width in reversed(LEVELS):
        first, last = max(low // width, -(-start // width)), high // width
        if first < last:
            _roll_level(connection, level, finer, first, last, width // finer_width)
        finer, finer_width = level, width


def _signed_sums(kind, shape: tuple, sign: int):
    """SELECT dims, sign * sums of the rolled rows of the bucket ranges ``[:r<n>_low,
    :r<n>_high)`` of each level of ``shape`` (``(level, number of ranges)`` pairs)."""
    parts, n = [], 0
    for level, count in shape:
        table = kind.table(level)
        for _ in range(count):
            parts.append(
                select(
                    *(table.c[d] for d in kind.dims), *(table.c[m] for m in kind.measures)
                ).where(
                    table.c.bucket >= bindparam(f"r{n}_low"),
                    table.c.bucket < bindparam(f"r{n}_high"),
                )
            )
            n += 1
    rows = union_all(*parts).subquery()
    dims = [rows.c[d] for d in kind.dims]
    return (
        select(*dims, *((sign * func.sum(rows.c[m])).label(m) for m in kind.measures))
        .where(true())
        .group_by(*dims)
    )


def _blank(column):
    """A value of the column's type that stands in for NULL in a comparison."""
    if isinstance(column.type, String):
        return ""
    return UUID(int=0) if isinstance(column.type, Uuid) else 0


def _same(stored, added, dialect: str):
    """``stored IS NOT DISTINCT FROM added``. SQLite's ``IS`` uses the total's index; on
    PostgreSQL, as an equality it can hash-join on (it compares IS NOT DISTINCT FROM row by
    row: a refresh from scratch took twice as long over the latency total)."""
    if dialect == "sqlite":
        return stored.is_not_distinct_from(added)
    filled = [func.coalesce(side, literal(_blank(stored), stored.type)) for side in (stored, added)]
    return and_(filled[0] == filled[1], stored.is_(None) == added.is_(None))


def _additions(kind, shape: tuple, sign: int, dialect: str):
    """UPDATE and INSERT that add the rows of :func:`_signed_sums` to the kind's total
    table: the rows of keys already there are updated, the others inserted. Keys match
    NULL to NULL (a failed event's stage, say, is often NULL), which an ON CONFLICT upsert
    would not do."""
    table = kind.table("total")
    sums = _signed_sums(kind, shape, sign).subquery()
    same_key = [_same(table.c[d], sums.c[d], dialect) for d in kind.dims]
    updated = (
        update(table).where(*same_key).values({m: table.c[m] + sums.c[m] for m in kind.measures})
    )
    missing = select(sums).where(~select(table).where(*same_key).exists())
    return updated, insert(table).from_select([*kind.dims, *kind.measures], missing)


def _add_to_total(connection, kind, low: int, high: int, sign: int) -> None:
    """Add ``sign`` times the rolled rows of slots ``[low, high)`` to the kind's total: a
    chunk's (``sign`` 1) from its slot rows, a range that retention removed (-1, often
    long) from days, hours and slots."""
    ranges = split(low, high, by_slot=sign > 0)
    shape = tuple((level, len(pieces)) for level, pieces in ranges)
    dialect = connection.dialect.name
    statements = _statement(
        ("total", kind.name, dialect, shape, sign), _additions, kind, shape, sign, dialect
    )
    bounds = [bound for _, pieces in ranges for bound in pieces]
    values = {
        f"r{n}_{end}": b[i] for n, b in enumerate(bounds) for i, end in enumerate(("low", "high"))
    }
    for statement in statements:
        connection.execute(statement, values)


def _roll_totals(connection, low: int, high: int, start: int, spans: dict) -> None:
    """Add slots ``[low, high)`` to each total; first drop what retention removed."""
    oldest: dict[tuple[str, str], int | None] = {}
    for kind in KINDS:
        if not kind.cumulative:
            continue
        name = total_name(kind)
        first, last = spans.get(kind.name, (start, low))
        source = (kind.source.name, kind.time.name)
        if source not in oldest:
            oldest[source] = oldest_slot(connection, kind)
        slot = oldest[source]
        cut = last if slot is None else min(last, slot + 1)
        if first < cut:
            _add_to_total(connection, kind, first, cut, -1)
            first = cut
        _add_to_total(connection, kind, low, high, 1)
        values = {"start_slot": first, "watermark_slot": high}
        if kind.name in spans:
            connection.execute(update(state).where(state.c.name == name).values(**values))
        else:
            connection.execute(insert(state).values(name=name, **values))


def refresh_chunk(connection, target: int, chunk_slots: int, rows: int | None = None) -> int | None:
    """Roll one chunk inside the caller's transaction; the new watermark, or ``None`` when
    the watermark already reached ``target``. ``rows`` bounds the rows of each source that
    the chunk rolls (see :func:`_chunk_end`)."""
    mark = read_watermark(connection)
    if mark is None:
        first = _first_slot(connection, target)
        connection.execute(
            insert(state).values(name=STATE_NAME, start_slot=first, watermark_slot=first)
        )
        low, start, spans, fine_slots = first, first, {}, None
    else:
        low, start, spans = mark.watermark_slot, mark.start_slot, mark.totals
        fine_slots = mark.fine
    if low >= target:
        return None
    high = _chunk_end(connection, low, target, chunk_slots, rows)
    _roll_slots(connection, low, high)
    fine.keep(connection, fine_slots, low, high, target)
    _roll_whole(connection, low, high, start)
    _roll_totals(connection, low, high, start, spans)
    connection.execute(update(state).where(state.c.name == STATE_NAME).values(watermark_slot=high))
    return high


def _rehearsed_chunk(connection, target: int, rows: int | None) -> None:
    """The statements of a chunk that completes a day before ``target``, and its totals."""
    low = (target // SLOTS_PER_DAY - 1) * SLOTS_PER_DAY
    _chunk_end(connection, low, target, SLOTS_PER_DAY, rows)
    _roll_slots(connection, low, low + SLOTS_PER_DAY)
    fine.keep(connection, (low, low), low, low + SLOTS_PER_DAY, target)
    _roll_whole(connection, low, low + SLOTS_PER_DAY, low)
    for kind in KINDS:
        if kind.cumulative:
            _add_to_total(connection, kind, low, low + SLOTS_PER_DAY, 1)


def writers_turn(held: float) -> float:
    """Seconds a SQLite refresh sleeps after holding the write lock ``held`` seconds, so that
    a writer waiting meanwhile takes it: SQLite's busy handler tries again after 1 to 25 ms
    while it has waited under 103 ms, after 50 ms under 228 ms, then every 100 ms."""
    return min(0.15, max(0.04, held * 0.6))


def refresh(
    engine,
    now: datetime,
    horizon: timedelta,
    *,
    until: datetime | None = None,
    chunk_slots: int = SLOTS_PER_DAY,
    max_chunks: int | None = None,
) -> RefreshReport:
    """Roll every closed slot before ``now - horizon`` (and before ``until``, if given).

    ``chunk_slots`` must divide the slots of a day (96); ``max_chunks`` bounds the work of one call.
    """
    if SLOTS_PER_DAY % chunk_slots:
        raise ValueError(f"chunk_slots must divide {SLOTS_PER_DAY}")
    target = horizon_slot(now, horizon)
    if until is not None:
        target = min(target, slot_of(until))
    sqlite = engine.dialect.name == "sqlite"
    rows = SQLITE_CHUNK_ROWS if sqlite else None
    if sqlite:  # compile the statements before a chunk holds the write lock
        rehearse(engine, lambda connection: _rehearsed_chunk(connection, target, rows))
    tail.mark(engine)  # a moment the fold that ends this refresh (or a later one) moves the cut to
    chunks, mark, held = 0, None, 0.0
    while max_chunks is None or chunks < max_chunks:
        if chunks and sqlite:
            time.sleep(writers_turn(held))
        with engine.connect() as connection:
            if not _locked(connection):
                connection.rollback()
                return RefreshReport(chunks, mark, busy=True)
            began = time.monotonic()
            unlimited(connection)  # maintenance, not a request: no host statement limit
            high = refresh_chunk(connection, target, chunk_slots, rows)
            if high is None:  # caught up: fold the rows the triggers added too
                dead_letter_counts.compact(connection)
                caught_up = read_watermark(connection)
                assert caught_up is not None  # refresh_chunk stored it
                tail.keep(connection, caught_up.watermark_slot)
            connection.commit()
            held = time.monotonic() - began
        if high is None:
            vacuum_churned(engine)  # what the fold deleted, before the next reads scan it
            break
        chunks, mark = chunks + 1, high
    with engine.connect() as connection:
        stored = read_watermark(connection)
    return RefreshReport(chunks, stored.watermark_slot if stored else None)


def reset(engine) -> None:
    """Drop every rolled row and the watermark; the next refresh starts from scratch."""
    with engine.connect() as connection:
        if not _locked(connection):
            raise RefreshBusy("another process is refreshing the rollups; try again later")
        for kind in KINDS + TAILS:
            for level in kind.levels:
                connection.execute(delete(kind.table(level)))
        fine.clear(connection)
        connection.execute(delete(state))
        connection.commit()
