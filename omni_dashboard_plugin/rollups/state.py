"""The watermark: which slots the rollup tables hold, and which of them a read may use."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import URL, func, literal_column, select

from ..grid import slot_of
from ..sql.built import built
from ..sql.constructs import slot_end, slot_index, slot_start
from . import fine, tail
from .kinds import KINDS, state

STATE_NAME = "all"


@dataclass(frozen=True)
class RolledRange:
    """Slots ``[start, end)`` that a read takes from the rollup tables; ``version`` changes
    whenever a refresh commits or the rollups are reset (``None``: not known); ``fine``:
    the fine rows' series (see :attr:`Watermark.fine`)."""

    start: int
    end: int
    version: str | None = None
    fine: tuple[int, int] | None = None


@dataclass(frozen=True)
class Watermark:
    """Stored progress: slots ``[start_slot, watermark_slot)`` are rolled up; ``totals``
    maps a cumulative kind's name to the slot range its total table holds; ``tail`` is
    the first slot the tail tables keep exactly (``None``: read the tail raw); ``fine``:
    the fine rows' series, whose kept slots .fine.kept derives (``None``: none)."""

    start_slot: int
    watermark_slot: int
    totals: dict = field(default_factory=dict, compare=False)
    tail: int | None = None
    version: str | None = field(default=None, compare=False)
    fine: tuple[int, int] | None = field(default=None, compare=False)


def total_name(kind) -> str:
    """The state row of a cumulative kind's total table."""
    return f"total:{kind.name}"


def read_watermark(connection) -> Watermark | None:
    """The stored progress, or ``None`` before the first refresh."""
    dialect = connection.dialect.name

    def build():
        # PostgreSQL: the transaction that last wrote the row, a version of the rollups.
        written = "xmin::text" if dialect == "postgresql" else "NULL"
        return select(
            state.c.name, state.c.start_slot, state.c.watermark_slot, literal_column(written)
        ).where(tail.usable(connection))

    found = connection.execute(built(("watermark", dialect), build)).all()
    rows = {name: (int(low), int(high)) for name, low, high, _ in found}
    if STATE_NAME not in rows:
        return None
    totals = {name[6:]: span for name, span in rows.items() if name.startswith("total:")}
    kept = rows.get(tail.STATE_NAME)
    version = next(written for name, _, _, written in found if name == STATE_NAME)
    fine_slots = rows.get(fine.STATE_NAME)
    return Watermark(*rows[STATE_NAME], totals, kept and kept[0], version, fine_slots)


def oldest_slot(connection, kind) -> int | None:
    """The slot of the oldest row of the kind's source (by its time column), or ``None``
    when there is none. Retention may have cut that slot and older ones."""
    oldest = connection.execute(select(func.min(kind.time))).scalar()
    return None if oldest is None else slot_of(oldest)


def _oldest_slot_check(kind):
    """SELECT the oldest time, the rows now in its slot, and the rows rolled for it."""
    oldest = select(func.min(kind.time).label("oldest")).select_from(kind.source).subquery()
    conditions = [kind.time >= oldest.c.oldest, kind.time < slot_end(oldest.c.oldest)]
    if kind.where is not None:
        conditions.append(kind.where)
    now_in_slot = select(func.count()).select_from(kind.source).where(*conditions)
    slots = kind.table("slot")
    rolled = select(func.coalesce(func.sum(slots.c.n), 0)).where(
        slots.c.bucket == slot_index(slot_start(oldest.c.oldest))
    )
    return select(oldest.c.oldest, now_in_slot.scalar_subquery(), rolled.scalar_subquery())


# first_whole_slot's ``oldest`` when the caller has not read it.
UNREAD = object()


def first_whole_slot(
    connection, kind, version: str | None = None, oldest: object = UNREAD
) -> int | None:
    """The first slot of the kind's source whose rolled rows still hold every row, or
    ``None`` when the source is empty.

    Slots before the oldest row's lost their rows to retention. The oldest row's slot
    counts when it holds as many rows as were rolled up for it (rows older than the
    horizon are never added, so a smaller count means retention cut into it); its rolled
    rows are then exact, else the next slot is the first.

    Counting the slot reads as many rows as arrive in 15 minutes, so with a ``version``
    the answer is kept per source until that version or the oldest row's time changes
    (one index probe): rolled slots change only by retention, which deletes the oldest
    row first. ``oldest``, when given, is that time as read already in this snapshot.
    """
    key = (kind.source.name, kind.time.name)
    # Any kind of the source tells (its rolled n and the rows counted share its filter).
    first = next(k for k in KINDS if (k.source.name, k.time.name) == key)
    if version is not None:
        if oldest is UNREAD:
            oldest_of = built(("oldest", first.name), lambda: select(func.min(first.time)))
            oldest = connection.execute(oldest_of).scalar()
        if oldest is None:
            return None
        known = _WHOLE.get((connection.engine.url, first.name))
        if known and known[:2] == (oldest, version):
            return known[2]
    statement = built(("oldest slot", first.name), lambda: _oldest_slot_check(first))
    found, now_in_slot, rolled = connection.execute(statement).one()
    if found is None:
        return None
    whole = slot_of(found) + (int(now_in_slot) != int(rolled))
    if version is not None:
        _WHOLE[(connection.engine.url, first.name)] = (found, version, whole)
    return whole


# first_whole_slot's last answer per database and source: (oldest row's time, version, answer).
_WHOLE: dict[tuple[URL, str], tuple[datetime, str, int]] = {}


def horizon_slot(now: datetime, horizon: timedelta) -> int:
    """The first slot still open to late writes: rows at or after it are read raw."""
    return slot_of(now - horizon)


def usable_range(mark: Watermark, now: datetime, horizon: timedelta) -> RolledRange:
    """The rolled slots a read at ``now`` may use: below the watermark and the horizon."""
    end = max(mark.start_slot, min(mark.watermark_slot, horizon_slot(now, horizon)))
    return RolledRange(mark.start_slot, end, mark.version, mark.fine)
