"""The 15-minute UTC slot grid that every count is kept and read on.

Slot ``k`` covers ``[k * 15 min, (k + 1) * 15 min)`` after the Unix epoch, hour ``h`` the
slots ``[4 h, 4 (h + 1))``, day ``d`` the slots ``[96 d, 96 (d + 1))``. Every UTC offset in
use today is a multiple of 15 minutes, so every hourly or daily bucket of every time zone
starts on the grid.
"""

from datetime import UTC, datetime, timedelta

SLOT = timedelta(minutes=15)
SLOT_SECONDS = SLOT // timedelta(seconds=1)
SLOTS_PER_DAY = timedelta(days=1) // SLOT
SLOTS_PER_HOUR = timedelta(hours=1) // SLOT
# The fine buckets of recent slots (see rollups.fine): a slot holds a whole number of them.
FINE = timedelta(seconds=10)
FINES_PER_SLOT = SLOT // FINE
# Omni's timestamps are naive UTC; the time-zone arithmetic works on aware instants.
EPOCH = datetime(1970, 1, 1)
AWARE_EPOCH = EPOCH.replace(tzinfo=UTC)
# Timestamps have microsecond resolution (Python, PostgreSQL, SQLAlchemy's SQLite format),
# so ``t < moment`` is ``t <= moment - RESOLUTION``.
RESOLUTION = timedelta(microseconds=1)


def slot_of(moment: datetime) -> int:
    """The slot holding a naive-UTC instant."""
    return (moment - EPOCH) // SLOT


def slot_time(slot: int) -> datetime:
    """The first instant of a slot, naive UTC."""
    return EPOCH + slot * SLOT


def aware_slot_time(slot: int) -> datetime:
    """The first instant of a slot, aware UTC."""
    return AWARE_EPOCH + slot * SLOT


def first_slot_from(instant: datetime) -> int:
    """The first slot that starts at or after an aware instant."""
    return -((AWARE_EPOCH - instant) // SLOT)


def grid_floor(instant: datetime) -> datetime:
    """The start of the slot holding an aware instant."""
    return aware_slot_time((instant - AWARE_EPOCH) // SLOT)
