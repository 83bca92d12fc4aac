"""Split a time window into rolled-up days, rolled-up slots and raw pieces.

Slot ``k`` covers ``[k * 15 min, (k + 1) * 15 min)`` after the Unix epoch, day ``d`` the
slots ``[96 d, 96 (d + 1))``. Only slots of the rolled range ``[start, end)`` may be read
from rollups; every other instant of the window is read from the source rows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from .kinds import SLOTS_PER_DAY

SLOT = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1)


def slot_of(moment: datetime) -> int:
    """The slot holding a naive-UTC instant."""
    return (moment - EPOCH) // SLOT


def slot_time(slot: int) -> datetime:
    """The first instant of a slot."""
    return EPOCH + slot * SLOT


@dataclass(frozen=True)
class Plan:
    """Where each part of a window is read from.

    ``days`` and ``slots`` are half-open bucket ranges of the rollup tables; ``raw`` are
    ``(lower, upper, upper_inclusive)`` instant ranges of the source (``None`` = open).
    """

    days: tuple[tuple[int, int], ...]
    slots: tuple[tuple[int, int], ...]
    raw: tuple[tuple[datetime | None, datetime | None, bool], ...]


def plan(
    since: datetime | None,
    until: datetime | None,
    start: int,
    end: int,
    *,
    by_slot: bool = False,
) -> Plan:
    """The plan of the window ``since <= t <= until`` over the rolled range ``[start, end)``.

    With ``by_slot`` the rolled part is read from slots only (for per-slot results).
    """
    first = start if since is None else max(start, -(-(since - EPOCH) // SLOT))
    last = end if until is None else min(end, slot_of(until))
    if first >= last:
        return Plan((), (), ((since, until, True),))
    raw = []
    if since is None or since < slot_time(first):
        raw.append((since, slot_time(first), False))
    if until is None or until >= slot_time(last):
        raw.append((slot_time(last), until, True))
    day_first = -(-first // SLOTS_PER_DAY)
    day_last = last // SLOTS_PER_DAY
    if by_slot or day_first >= day_last:
        return Plan((), ((first, last),), tuple(raw))
    slots = [
        (a, b)
        for a, b in ((first, day_first * SLOTS_PER_DAY), (day_last * SLOTS_PER_DAY, last))
        if a < b
    ]
    return Plan(((day_first, day_last),), tuple(slots), tuple(raw))
