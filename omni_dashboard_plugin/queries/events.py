"""Event counts of a window for the rates, timeline, breakdowns and comparison.

Each question is asked of the smallest rollup kind that can answer it: one filtered on an
instance reads ``instance_slots`` for timelines and ``event_counts`` otherwise (through
their index on the instance), the others ``event_slots`` for counts and timelines and
``event_channels`` for breakdowns (through their index on the channel when filtered on
one).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from ..reading import Reader
from ..rollups.kinds import EVENT_CHANNELS, EVENT_COUNTS, EVENT_SLOTS, INSTANCE_SLOTS
from ..window import EventWindow


class Tally(NamedTuple):
    """Events of a window, and those of them with status ``failed``."""

    count: int  # type: ignore[assignment]  # shadows tuple.count, which no caller wants
    failed: int


def counts_kind(window: EventWindow):
    """The smallest kind that counts the window's events (and failed ones)."""
    return EVENT_SLOTS if window.instance_id is None else EVENT_COUNTS


def timeline_kind(window: EventWindow):
    """The smallest kind that counts the window's events (and failed ones) per slot."""
    return EVENT_SLOTS if window.instance_id is None else INSTANCE_SLOTS


def breakdown_kind(window: EventWindow):
    """The smallest kind with channel, direction and status that has the window's filters."""
    return EVENT_CHANNELS if window.instance_id is None else EVENT_COUNTS


def slot_counts(reader: Reader, window: EventWindow) -> dict[int, Tally]:
    """Events of the window per 15-minute UTC slot: ``{slot index: Tally}``.

    Slot ``k`` covers ``[k * 900 s, (k + 1) * 900 s)`` after the Unix epoch; only
    non-empty slots are returned.
    """
    rows = reader.sums(
        timeline_kind(window), window.since, window.until, where=window.where, by_slot=True
    )
    return {row.slot: Tally(row.n, row.failed) for row in rows}


def tally(reader: Reader, window: EventWindow, *, per_slot: bool = False) -> Tally:
    """Events of the window and failed ones.

    ``per_slot`` sums the per-slot counts of the window instead, the same question its
    timeline asks, so that one response answers both with one statement.
    """
    if per_slot:
        slots = slot_counts(reader, window).values()
        return Tally(sum(t.count for t in slots), sum(t.failed for t in slots))
    kind = counts_kind(window)
    [row] = reader.sums(kind, window.since, window.until, where=window.where)
    return Tally(row.n, row.failed)


def count_since(reader: Reader, since: datetime, *, per_slot: bool = False) -> int:
    """Events (of every instance and channel) with received_at >= since."""
    return tally(reader, EventWindow(since, None), per_slot=per_slot).count


@dataclass(frozen=True)
class RecentCounts:
    """Events received in the last hour and the last 24 hours before ``now``."""

    last_hour: int
    last_24h: int


def recent_counts(reader: Reader, now: datetime, filters: EventWindow) -> RecentCounts:
    """Events matching ``filters`` with received_at >= now - 1 h, and >= now - 24 h."""
    hour = filters.between(now - timedelta(hours=1), None)
    day = filters.between(now - timedelta(hours=24), None)
    return RecentCounts(
        last_hour=tally(reader, hour).count, last_24h=tally(reader, day, per_slot=True).count
    )


def measure_totals(rows: list, measures: tuple[str, ...]) -> dict[str, int]:
    """Each of ``measures`` summed over a reader's named ``rows``."""
    return {measure: sum(getattr(row, measure) for row in rows) for measure in measures}


def breakdown_rows(reader: Reader, window: EventWindow) -> list:
    """Rows of the window by channel, direction and status, with the event measures (``n``,
    ``failed``, ``proc_sum``, ``proc_n``, ``agent_sum``, ``agent_n``): its breakdowns and its
    totals by outcome come from this one question."""
    return reader.sums(
        breakdown_kind(window),
        window.since,
        window.until,
        by=("channel", "direction", "status"),
        where=window.where,
    )
