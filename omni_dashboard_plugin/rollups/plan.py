"""Split a time window into rolled-up days, hours and slots, and raw pieces.

Slots, hours and days are those of :mod:`..grid`. Only slots of the rolled range
``[start, end)`` may be read from rollups; every other instant of the window is read from
the source rows, except that within the slots whose fine rows are stored (see .fine) the
whole fine buckets are read from those.
"""

from dataclasses import dataclass
from datetime import datetime

from ..grid import EPOCH, FINE, RESOLUTION, SLOT, SLOTS_PER_DAY, SLOTS_PER_HOUR, slot_of, slot_time

# The rollup levels coarser than a slot, coarsest first, with their width in slots.
LEVELS = (("day", SLOTS_PER_DAY), ("hour", SLOTS_PER_HOUR))
# A raw instant range: (lower, upper, upper inclusive); None is open.
Piece = tuple[datetime | None, datetime | None, bool]


@dataclass(frozen=True)
class Plan:
    """Where each part of a window is read from.

    ``rolled`` is the slot range ``[first, last)`` read from rollups (``None``: none),
    ``levels`` splits it into half-open bucket ranges per rollup level (see :func:`split`),
    ``raw`` are ``(lower, upper, upper_inclusive)`` instant ranges of the source
    (``None`` = open), ``fine`` are fine bucket ranges ``[a, b)`` read from the fine rows.
    """

    rolled: tuple[int, int] | None
    levels: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    raw: tuple[Piece, ...]
    fine: tuple[tuple[int, int], ...] = ()


def split(first: int, last: int, *, by_slot: bool = False):
    """The slot range ``[first, last)`` as ``(level, bucket ranges)`` pairs: whole UTC
    days from the day table, whole hours of the rest from the hour table, the remaining
    slots from the slot table (only slots with ``by_slot``). At most one day range, two
    hour ranges and two slot ranges; empty levels are left out."""
    pieces = [(first, last)] if first < last else []
    found = []
    for level, width in () if by_slot else LEVELS:
        ranges, rest = [], []
        for a, b in pieces:
            low, high = -(-a // width), b // width
            if low >= high:
                rest.append((a, b))
                continue
            ranges.append((low, high))
            rest += [(x, y) for x, y in ((a, low * width), (high * width, b)) if x < y]
        if ranges:
            found.append((level, tuple(ranges)))
        pieces = rest
    if pieces:
        found.append(("slot", tuple(pieces)))
    return tuple(found)


def _refined(piece: Piece, low: int, high: int) -> tuple[list[Piece], list[tuple[int, int]]]:
    """A raw piece as raw pieces and fine bucket ranges: its whole fine buckets within
    slots ``[low, high)`` from the fine rows, the rest raw."""
    since, until, inclusive = piece
    begin = slot_time(low) if since is None else max(since, slot_time(low))
    after = slot_time(high)  # the first instant past the part within the slots
    if until is not None:
        after = min(after, until + RESOLUTION if inclusive else until)
    first, last = -(-(begin - EPOCH) // FINE), (after - EPOCH) // FINE
    if first >= last:
        return [piece], []
    head, rest = EPOCH + first * FINE, EPOCH + last * FINE
    raw: list[Piece] = []
    if since is None or since < head:
        raw.append((since, head, False))
    if until is None or until > rest or (inclusive and until == rest):
        raw.append((rest, until, inclusive))
    return raw, [(first, last)]


def plan(
    since: datetime | None,
    until: datetime | None,
    start: int,
    end: int,
    *,
    by_slot: bool = False,
    fine: tuple[int, int] | None = None,
) -> Plan:
    """The plan of the window ``since <= t <= until`` over the rolled range ``[start, end)``.

    With ``by_slot`` the rolled part is read from slots only (for per-slot results). The
    raw parts within the slots ``fine`` (of the rolled range) are read in whole fine
    buckets where they hold some.
    """
    found = _plan(since, until, start, end, by_slot)
    low, high = (max(fine[0], start), min(fine[1], end)) if fine else (0, 0)
    if low >= high:
        return found
    raw, buckets = [], []
    for piece in found.raw:
        pieces, ranges = _refined(piece, low, high)
        raw += pieces
        buckets += ranges
    return Plan(found.rolled, found.levels, tuple(raw), tuple(buckets))


def _plan(
    since: datetime | None, until: datetime | None, start: int, end: int, by_slot: bool
) -> Plan:
    """:func:`plan` without fine buckets."""
    first = start if since is None else max(start, -(-(since - EPOCH) // SLOT))
    # A slot is whole when its last instant is at or before until (one that ends a
    # microsecond before a slot, the end of a half-open window, holds no raw part).
    last = end if until is None else min(end, slot_of(until + RESOLUTION))
    if first >= last:
        # No whole rolled slot in the window. What lies from the rolled range's end on is
        # still a piece of its own, so that a reader takes it from the kept tail: as one
        # piece with the window's head, it was read raw, a window's worth of rows (a
        # last-hour count for the second after each quarter hour until the refresh rolled
        # the slot that the horizon had just passed).
        cut = slot_time(end)
        if (since is None or since < cut) and (until is None or until >= cut):
            return Plan(None, (), ((since, cut, False), (cut, until, True)))
        return Plan(None, (), ((since, until, True),))
    raw: list[Piece] = []
    if since is None or since < slot_time(first):
        raw.append((since, slot_time(first), False))
    if until is None or until >= slot_time(last):
        raw.append((slot_time(last), until, True))
    return Plan((first, last), split(first, last, by_slot=by_slot), tuple(raw))
