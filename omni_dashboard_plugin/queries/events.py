"""Event counts for the rates, timeline and breakdown providers."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..rollups.kinds import EVENT_CHANNELS, EVENT_COUNTS, EVENTS
from ..rollups.reader import RawReader
from ..window import EventWindow


def _instance(window: EventWindow) -> dict:
    return {} if window.instance_id is None else {"instance_id": window.instance_id}


def _kind(window: EventWindow):
    """The smaller kind (per status) unless the window filters on an instance."""
    return EVENTS if window.instance_id is None else EVENT_COUNTS


def count_since(reader: RawReader, since: datetime, *, per_slot: bool = False) -> int:
    """Events with received_at >= since.

    ``per_slot`` sums the per-slot counts of the window instead, the same question the
    24-hour timeline asks, so that one response answers both with one statement.
    """
    if per_slot:
        return sum(row[1] for row in reader.sums(EVENTS, since, by_slot=True))
    return reader.sums(EVENTS, since)[0][0]


@dataclass(frozen=True)
class RecentCounts:
    """Events received in the last hour and the last 24 hours before ``now``."""

    last_hour: int
    last_24h: int


def recent_counts(reader: RawReader, now: datetime) -> RecentCounts:
    """Events with received_at >= now - 1 h, and >= now - 24 h."""
    return RecentCounts(
        last_hour=count_since(reader, now - timedelta(hours=1)),
        last_24h=count_since(reader, now - timedelta(hours=24), per_slot=True),
    )


def slot_counts(reader: RawReader, window: EventWindow) -> dict[int, int]:
    """Events of the window per 15-minute UTC slot: ``{slot index: count}``.

    Slot ``k`` covers ``[k * 900 s, (k + 1) * 900 s)`` after the Unix epoch; only
    non-empty slots are returned.
    """
    rows = reader.sums(
        _kind(window), window.since, window.until, where=_instance(window), by_slot=True
    )
    return {slot: n for slot, n, *_ in rows}


def channel_direction_counts(reader: RawReader, window: EventWindow) -> dict[tuple[str, str], int]:
    """Events of the window per (channel, direction)."""
    rows = reader.sums(
        EVENT_CHANNELS if window.instance_id is None else EVENT_COUNTS,
        window.since,
        window.until,
        by=("channel", "direction"),
        where=_instance(window),
    )
    return {(channel, direction): n for channel, direction, n, *_ in rows}
