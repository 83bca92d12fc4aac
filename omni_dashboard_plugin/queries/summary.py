"""The totals the dashboard summary needs beyond what the providers compute."""

from sqlalchemy import func, select

from ..sql.constructs import sum_where
from ..sql.tables import dead_letter_events, instances


def _count(condition=None):
    query = select(func.count()).select_from(dead_letter_events)
    return (query if condition is None else query.where(condition)).scalar_subquery()


def dead_letter_counts(reader, statuses: tuple[str, ...]) -> dict[str, int]:
    """Dead letters of each of ``statuses``: as kept by triggers when the reader has them
    (:mod:`..rollups.dead_letter_counts`), else each counted over its own index range."""
    kept = reader.dead_letters()
    if kept is not None:
        return {s: kept.get(s, 0) for s in statuses}
    status = dead_letter_events.c.status
    row = reader.connection.execute(select(*(_count(status == s) for s in statuses))).one()
    return dict(zip(statuses, (int(n) for n in row), strict=True))


def dead_letter_census(reader, statuses: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Dead letters of each of ``statuses`` and of every status, as
    :func:`dead_letter_counts` reads them (raw: in one statement)."""
    kept = reader.dead_letters()
    if kept is not None:
        return {s: kept.get(s, 0) for s in statuses}, sum(kept.values())
    status = dead_letter_events.c.status
    *counts, total = reader.connection.execute(
        select(*(_count(status == s) for s in statuses), _count())
    ).one()
    return dict(zip(statuses, (int(n) for n in counts), strict=True)), int(total)


def dead_letter_totals(reader) -> tuple[int, int]:
    """(pending, total) dead letters."""
    counts, total = dead_letter_census(reader, ("pending",))
    return counts["pending"], total


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
