"""The totals the dashboard summary needs beyond what the providers compute."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .constructs import sum_where
from .tables import dead_letter_events, instances, omni_events


@dataclass(frozen=True)
class EventTotals:
    total: int
    failed: int
    last_24h: int


def event_totals(connection, now: datetime) -> EventTotals:
    """All-time total and failed events, and events with received_at >= now - 24 h."""
    E = omni_events
    row = connection.execute(
        select(
            func.count(),
            sum_where(E.c.status == "failed"),
            sum_where(E.c.received_at >= now - timedelta(hours=24)),
        )
    ).one()
    return EventTotals(*(int(v) for v in row))


def dead_letter_totals(connection) -> tuple[int, int]:
    """(pending, total) dead letters."""
    D = dead_letter_events
    pending, total = connection.execute(
        select(sum_where(D.c.status == "pending"), func.count())
    ).one()
    return int(pending), int(total)


def instance_totals(connection) -> dict:
    """total, connected (is_active) and count per channel of the instances."""
    rows = connection.execute(
        select(instances.c.channel, func.count(), sum_where(instances.c.is_active)).group_by(
            instances.c.channel
        )
    ).all()
    return {
        "total": sum(int(n) for _, n, _ in rows),
        "connected": sum(int(c) for _, _, c in rows),
        "byChannel": {channel: int(n) for channel, n, _ in rows},
    }
