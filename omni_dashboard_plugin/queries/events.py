"""Event counts for the rates, timeline and breakdown providers."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, true

from ..window import EventWindow
from .constructs import SLOT_SECONDS, epoch_slot, sum_where
from .tables import omni_events as E


def window_condition(window: EventWindow):
    """WHERE clause of an event window (both bounds inclusive)."""
    conditions = []
    if window.since is not None:
        conditions.append(E.c.received_at >= window.since)
    if window.until is not None:
        conditions.append(E.c.received_at <= window.until)
    if window.instance_id is not None:
        conditions.append(E.c.instance_id == window.instance_id)
    return and_(true(), *conditions)


@dataclass(frozen=True)
class RecentCounts:
    """Events received in the last hour and the last 24 hours before ``now``."""

    last_hour: int
    last_24h: int


def recent_counts(connection, now: datetime) -> RecentCounts:
    """One statement: events with received_at >= now - 1 h, and >= now - 24 h."""
    day_ago = now - timedelta(hours=24)
    hour_ago = now - timedelta(hours=1)
    row = connection.execute(
        select(
            func.count(),
            sum_where(E.c.received_at >= hour_ago),
        ).where(E.c.received_at >= day_ago)
    ).one()
    return RecentCounts(last_hour=int(row[1]), last_24h=int(row[0]))


def slot_counts(connection, window: EventWindow) -> dict[int, int]:
    """Events of the window per 15-minute UTC slot: ``{slot index: count}``.

    Slot ``k`` covers ``[k * 900 s, (k + 1) * 900 s)`` after the Unix epoch; only
    non-empty slots are returned.
    """
    slot = epoch_slot(E.c.received_at, SLOT_SECONDS).label("slot")
    rows = connection.execute(
        select(slot, func.count()).where(window_condition(window)).group_by(slot)
    ).all()
    return {int(k): int(n) for k, n in rows}


def channel_direction_counts(connection, window: EventWindow) -> dict[tuple[str, str], int]:
    """Events of the window per (channel, direction)."""
    rows = connection.execute(
        select(E.c.channel, E.c.direction, func.count())
        .where(window_condition(window))
        .group_by(E.c.channel, E.c.direction)
    ).all()
    return {(channel, direction): int(n) for channel, direction, n in rows}
