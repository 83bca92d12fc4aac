"""The watermark: which slots the rollup tables hold, and which of them a read may use."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from .kinds import state
from .plan import slot_of

STATE_NAME = "all"


@dataclass(frozen=True)
class RolledRange:
    """Slots ``[start, end)`` that a read takes from the rollup tables."""

    start: int
    end: int


@dataclass(frozen=True)
class Watermark:
    """Stored progress: slots ``[start_slot, watermark_slot)`` are rolled up."""

    start_slot: int
    watermark_slot: int


def read_watermark(connection) -> Watermark | None:
    """The stored progress, or ``None`` before the first refresh."""
    row = connection.execute(
        select(state.c.start_slot, state.c.watermark_slot).where(state.c.name == STATE_NAME)
    ).first()
    return Watermark(int(row[0]), int(row[1])) if row else None


def horizon_slot(now: datetime, horizon: timedelta) -> int:
    """The first slot still open to late writes: rows at or after it are read raw."""
    return slot_of(now - horizon)


def usable_range(mark: Watermark, now: datetime, horizon: timedelta) -> RolledRange:
    """The rolled slots a read at ``now`` may use: below the watermark and the horizon."""
    end = max(mark.start_slot, min(mark.watermark_slot, horizon_slot(now, horizon)))
    return RolledRange(mark.start_slot, end)
