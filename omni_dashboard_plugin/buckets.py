"""Time-zone-aligned buckets over UTC instants, in plain Python.

Hourly buckets start where the local wall hour (or the UTC offset) changes; daily buckets start at
local midnight (or where the day begins when midnight falls in a DST gap), so DST days have
23 or 25 hours. Bucket boundaries are assumed to fall on the 15-minute UTC grid, which holds
for every UTC offset in use today (all are multiples of 15 minutes).
"""

from bisect import bisect_right
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .grid import SLOT, first_slot_from, grid_floor

HOURLY = "hourly"
DAILY = "daily"
GRANULARITIES = (HOURLY, DAILY)


class TooManyBuckets(Exception):
    """The span holds more buckets than allowed."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} buckets")
        self.limit = limit


@lru_cache(maxsize=8192)
def _hour_key(instant: datetime, zone: ZoneInfo) -> tuple:
    """The local wall hour with its offset: a new key between two instants 15 minutes
    apart starts a new hourly bucket. (Kept: the grid points of consecutive requests'
    windows are mostly the same, and converting to a zone is the costly part.)"""
    local = instant.astimezone(zone)
    return local.hour, local.utcoffset()


@lru_cache(maxsize=8192)
def _label(instant: datetime, zone: ZoneInfo) -> str:
    """ISO 8601 of a bucket start with the zone's offset at that instant."""
    return instant.astimezone(zone).isoformat()


def _hour_starts(start: datetime, end: datetime, zone: ZoneInfo, limit: int | None):
    # No hourly bucket is longer than an hour: a longer span is refused without a walk
    # (which could reach before the year 1).
    if limit is not None and end - start > limit * timedelta(hours=1):
        raise TooManyBuckets(limit)
    # Only the grid points from start's to end's count: consecutive requests share them.
    return _grid_hour_starts(grid_floor(start), grid_floor(end), zone, limit)


@lru_cache(maxsize=256)
def _grid_hour_starts(cursor: datetime, end: datetime, zone: ZoneInfo, limit: int | None):
    key = _hour_key(cursor, zone)
    while _hour_key(cursor - SLOT, zone) == key:
        cursor -= SLOT
    starts: list[datetime] = []
    previous = None
    while cursor <= end:
        key = _hour_key(cursor, zone)
        if key != previous:
            starts.append(cursor)
            previous = key
            if limit is not None and len(starts) > limit:
                raise TooManyBuckets(limit)
        cursor += SLOT
    return tuple(starts)


def _midnight(day, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _day_starts(start: datetime, end: datetime, zone: ZoneInfo, limit: int | None):
    day = start.astimezone(zone).date()
    if _midnight(day, zone) > start:
        day -= timedelta(days=1)
    last_day = end.astimezone(zone).date()
    if limit is not None and (last_day - day).days + 1 > limit:
        raise TooManyBuckets(limit)
    starts: list[datetime] = []
    while day <= last_day:
        instant = _midnight(day, zone)
        if instant <= end and (not starts or instant > starts[-1]):
            starts.append(instant)
        day += timedelta(days=1)
    return tuple(starts)


def bucket_starts(
    start: datetime, end: datetime, zone: ZoneInfo, granularity: str, limit: int | None = None
) -> tuple[datetime, ...]:
    """Starts (aware UTC) of the buckets from the one holding ``start`` to the one holding ``end``.

    Raises :class:`TooManyBuckets` when there would be more than ``limit``.
    """
    if granularity == HOURLY:
        return _hour_starts(start, end, zone, limit)
    return _day_starts(start, end, zone, limit)


def bucket_after(start: datetime, zone: ZoneInfo, granularity: str) -> datetime:
    """Start (aware UTC) of the bucket that follows the one starting at ``start``.

    Raises OverflowError past the year 9999.
    """
    if granularity == HOURLY:
        key, cursor = _hour_key(start, zone), start + SLOT
        while _hour_key(cursor, zone) == key:
            cursor += SLOT
        return cursor
    day = start.astimezone(zone).date()
    while (following := _midnight(day + timedelta(days=1), zone)) <= start:
        day += timedelta(days=1)
    return following


@lru_cache(maxsize=64)
def _first_slots(starts: tuple[datetime, ...]) -> list[int]:
    """The first slot starting in each bucket: a slot is in bucket i when it starts at or
    after starts[i] (and before starts[i + 1])."""
    return [first_slot_from(start) for start in starts]


@lru_cache(maxsize=64)
def _labels(starts: tuple[datetime, ...], zone: ZoneInfo, shift: int) -> tuple[str, ...]:
    return tuple(_label(start - shift * SLOT, zone) for start in starts)


def fill(
    starts: tuple[datetime, ...],
    slots: dict,
    zone: ZoneInfo,
    *,
    shift: int = 0,
    stop: datetime | None = None,
) -> list[dict]:
    """Zero-filled ``[{bucket, count, failed}]``: each slot's tally (``count``, ``failed``)
    added to the bucket holding it.

    ``bucket`` is the bucket's start as ISO 8601 with the zone's offset at that instant.
    No slot may precede the first bucket (the caller derives the span from the same window
    the slots were counted in); slots from ``stop`` (the end of the last bucket) on are in
    none. With ``shift``, the slots are a comparison window's: slot ``s`` goes to the
    bucket holding slot ``s + shift`` (the first or last bucket when none holds it), and
    each bucket is labelled ``shift`` slots earlier.
    """
    counts = [0] * len(starts)
    failed = [0] * len(starts)
    first_slots = _first_slots(starts)
    end = None if stop is None or shift else first_slot_from(stop)
    for slot, tally in slots.items():
        if end is not None and slot >= end:
            continue
        index = bisect_right(first_slots, slot + shift) - 1
        if index < 0 and not shift:
            raise ValueError(f"slot {slot} precedes the first bucket {starts[0].isoformat()}")
        index = max(index, 0)
        counts[index] += tally.count
        failed[index] += tally.failed
    return [
        {"bucket": label, "count": c, "failed": f}
        for label, c, f in zip(_labels(starts, zone, shift), counts, failed, strict=True)
    ]
