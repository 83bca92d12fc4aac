"""Split a time window into rolled-up days, rolled-up slots and raw pieces.

Slots and days are those of :mod:`..grid`. Only slots of the rolled range
``[start, end)`` may be read from rollups; every other instant of the window is read from
the source rows.
"""

from dataclasses import dataclass
from datetime import datetime

from ..grid import EPOCH, RESOLUTION, SLOT, SLOTS_PER_DAY, slot_of, slot_time


@dataclass(frozen=True)
class Plan:
    """Where each part of a window is read from.

    ``rolled`` is the slot range ``[first, last)`` read from rollups (``None``: none),
    ``days`` and ``slots`` split it into half-open bucket ranges of the day and slot
    tables; ``raw`` are ``(lower, upper, upper_inclusive)`` instant ranges of the source
    (``None`` = open).
    """

    rolled: tuple[int, int] | None
    days: tuple[tuple[int, int], ...]
    slots: tuple[tuple[int, int], ...]
    raw: tuple[tuple[datetime | None, datetime | None, bool], ...]


def split(first: int, last: int, *, by_slot: bool = False):
    """The slot range ``[first, last)`` as (day ranges, slot ranges): whole UTC days from
    the day table, the rest from the slot table (only slots with ``by_slot``)."""
    day_first = -(-first // SLOTS_PER_DAY)
    day_last = last // SLOTS_PER_DAY
    if by_slot or day_first >= day_last:
        return (), (((first, last),) if first < last else ())
    slots = tuple(
        (a, b)
        for a, b in ((first, day_first * SLOTS_PER_DAY), (day_last * SLOTS_PER_DAY, last))
        if a < b
    )
    return ((day_first, day_last),), slots


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
    # A slot is whole when its last instant is at or before until (one that ends a
    # microsecond before a slot, the end of a half-open window, holds no raw part).
    last = end if until is None else min(end, slot_of(until + RESOLUTION))
    if first >= last:
        return Plan(None, (), (), ((since, until, True),))
    raw = []
    if since is None or since < slot_time(first):
        raw.append((since, slot_time(first), False))
    if until is None or until >= slot_time(last):
        raw.append((slot_time(last), until, True))
    days, slots = split(first, last, by_slot=by_slot)
    return Plan((first, last), days, slots, tuple(raw))
