"""Incremental refresh: roll closed slots up to the horizon, one transaction per chunk.

Each chunk (at most one UTC day, never crossing midnight) deletes and re-inserts its slot
rows, rolls up the hours and the day the chunk completes, and advances the watermark, all in
one transaction. A refresh killed midway therefore leaves either the whole chunk or
none of it, and running refresh again (or in several processes at once) never counts a
row twice: PostgreSQL serializes refreshers with a transaction-level advisory lock,
SQLite with ``BEGIN IMMEDIATE``.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import (
    String,
    Uuid,
    and_,
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
from ..sql.snapshot import unlimited
from . import dead_letter_counts, tail
from .kinds import BY_NAME, KINDS, TAILS, state
from .locks import REFRESH as LOCK_KEY
from .plan import LEVELS, split
from .source import by_slot
from .state import STATE_NAME, horizon_slot, oldest_slot, read_watermark, total_name


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


def _first_slot(connection, target: int) -> int:
    """Where rolling starts: the slot of the oldest row of any source, at most ``target``."""
    sources = {(kind.source.name, kind.time.name): kind for kind in KINDS}.values()
    found = [oldest_slot(connection, kind) for kind in sources]
    return min([slot for slot in found if slot is not None] + [target])


def _summed(kind, table, low: int, high: int, width: int = 1):
    """SELECT bucket, dims, sums of the kind's measures over ``table``'s rows of buckets
    ``[low, high)``, per bucket of a level ``width`` times coarser."""
    dims = [table.c[d] for d in kind.dims]
    bucket = table.c.bucket if width == 1 else table.c.bucket // width
    query = select(bucket, *dims, *(func.sum(table.c[m]) for m in kind.measures)).where(
        table.c.bucket >= low, table.c.bucket < high
    )
    return query.group_by(bucket, *dims)


def _roll_slots(connection, low: int, high: int) -> None:
    for kind in KINDS:
        table = kind.table("slot")
        connection.execute(delete(table).where(table.c.bucket >= low, table.c.bucket < high))
        if kind.rolled_from is None:
            source = by_slot(kind, low, high)
        else:
            source = _summed(kind, BY_NAME[kind.rolled_from].table("slot"), low, high)
        names = ["bucket", *kind.dims, *kind.measures]
        connection.execute(insert(table).from_select(names, source))


def _roll_level(connection, level: str, finer: str, low: int, high: int, width: int) -> None:
    """Roll the ``level`` buckets ``[low, high)`` up from the ``finer`` level's rows (a
    ``level`` bucket holds ``width`` of them)."""
    for kind in KINDS:
        table = kind.table(level)
        connection.execute(delete(table).where(table.c.bucket >= low, table.c.bucket < high))
        source = _summed(kind, kind.table(finer), low * width, high * width, width)
        names = ["bucket", *kind.dims, *kind.measures]
        connection.execute(insert(table).from_select(names, source))


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


def _signed_sums(kind, low: int, high: int, sign: int):
    """SELECT dims, sign * sums of the rolled rows of slots ``[low, high)``."""
    parts = []
    for level, ranges in split(low, high):
        table = kind.table(level)
        for a, b in ranges:
            parts.append(
                select(
                    *(table.c[d] for d in kind.dims), *(table.c[m] for m in kind.measures)
                ).where(table.c.bucket >= a, table.c.bucket < b)
            )
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


def _same(stored, added):
    """``stored IS NOT DISTINCT FROM added`` as an equality PostgreSQL can hash-join on
    (it compares IS NOT DISTINCT FROM row by row: a refresh from scratch took twice as
    long over the latency total)."""
    filled = [func.coalesce(side, literal(_blank(stored), stored.type)) for side in (stored, added)]
    return and_(filled[0] == filled[1], stored.is_(None) == added.is_(None))


def _add_to_total(connection, kind, source) -> None:
    """Add the rows of ``source`` (dims, measures) to the kind's total table: update the
    rows of keys already there, insert the others. Keys match NULL to NULL (a failed
    event's stage, say, is often NULL), which an ON CONFLICT upsert would not do."""
    table = kind.table("total")
    sums = source.subquery()
    same_key = [_same(table.c[d], sums.c[d]) for d in kind.dims]
    connection.execute(
        update(table).where(*same_key).values({m: table.c[m] + sums.c[m] for m in kind.measures})
    )
    missing = select(sums).where(~select(table).where(*same_key).exists())
    connection.execute(insert(table).from_select([*kind.dims, *kind.measures], missing))


def _roll_totals(connection, low: int, high: int, start: int, spans: dict) -> None:
    """Add slots ``[low, high)`` to each total; first drop what retention removed."""
    oldest = {}
    for kind in KINDS:
        if not kind.cumulative:
            continue
        name = total_name(kind)
        first, last = spans.get(kind.name, (start, low))
        source = (kind.source.name, kind.time.name)
        if source not in oldest:
            oldest[source] = oldest_slot(connection, kind)
        cut = last if oldest[source] is None else min(last, oldest[source] + 1)
        if first < cut:
            _add_to_total(connection, kind, _signed_sums(kind, first, cut, -1))
            first = cut
        _add_to_total(connection, kind, _signed_sums(kind, low, high, 1))
        values = {"start_slot": first, "watermark_slot": high}
        if kind.name in spans:
            connection.execute(update(state).where(state.c.name == name).values(**values))
        else:
            connection.execute(insert(state).values(name=name, **values))


def refresh_chunk(connection, target: int, chunk_slots: int) -> int | None:
    """Roll one chunk inside the caller's transaction; the new watermark, or ``None`` when
    the watermark already reached ``target``."""
    mark = read_watermark(connection)
    if mark is None:
        first = _first_slot(connection, target)
        connection.execute(
            insert(state).values(name=STATE_NAME, start_slot=first, watermark_slot=first)
        )
        low, start, spans = first, first, {}
    else:
        low, start, spans = mark.watermark_slot, mark.start_slot, mark.totals
    if low >= target:
        return None
    high = min(target, (low // chunk_slots + 1) * chunk_slots)
    _roll_slots(connection, low, high)
    _roll_whole(connection, low, high, start)
    _roll_totals(connection, low, high, start, spans)
    connection.execute(update(state).where(state.c.name == STATE_NAME).values(watermark_slot=high))
    return high


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
    chunks, mark = 0, None
    while max_chunks is None or chunks < max_chunks:
        with engine.connect() as connection:
            if not _locked(connection):
                connection.rollback()
                return RefreshReport(chunks, mark, busy=True)
            unlimited(connection)  # maintenance, not a request: no host statement limit
            high = refresh_chunk(connection, target, chunk_slots)
            if high is None:  # caught up: fold the rows the triggers added too
                dead_letter_counts.compact(connection)
                tail.keep(connection, read_watermark(connection).watermark_slot)
            connection.commit()
        if high is None:
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
        connection.execute(delete(state))
        connection.commit()
