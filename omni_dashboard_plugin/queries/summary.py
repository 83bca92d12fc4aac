"""The totals the dashboard summary needs beyond what the providers compute."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..rollups.kinds import EVENTS
from ..rollups.reader import RawReader
from .constructs import sum_where
from .events import count_since
from .tables import dead_letter_events, instances


@dataclass(frozen=True)
class EventTotals:
    total: int
    failed: int
    last_24h: int


def event_totals(reader: RawReader, now: datetime) -> EventTotals:
    """All-time total and failed events, and events with received_at >= now - 24 h."""
    by_status = {status: n for status, n, *_ in reader.sums(EVENTS, by=("status",))}
    last_24h = count_since(reader, now - timedelta(hours=24))
    return EventTotals(sum(by_status.values()), by_status.get("failed", 0), last_24h)


def dead_letter_counts(connection, statuses: tuple[str, ...] | None = None) -> dict[str, int]:
    """Dead letters per status (only statuses that occur), of ``statuses`` or of all."""
    D = dead_letter_events
    query = select(D.c.status, func.count()).group_by(D.c.status)
    if statuses is not None:
        query = query.where(D.c.status.in_(statuses))
    return {status: int(n) for status, n in connection.execute(query)}


def dead_letter_totals(connection) -> tuple[int, int]:
    """(pending, total) dead letters."""
    counts = dead_letter_counts(connection)
    return counts.get("pending", 0), sum(counts.values())


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
