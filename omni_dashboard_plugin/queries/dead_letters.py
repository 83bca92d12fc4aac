"""Dead letters per status: as the triggers of ``..rollups.dead_letter_counts`` keep them
when the reader has them, else counted over the status index."""

from typing import Any

from sqlalchemy import func, select

from ..reading import Reader
from ..sql.tables import dead_letter_events

# Omni's statuses: a by-status answer always has these keys (other statuses found too).
DEAD_LETTER_STATUSES = ("pending", "retrying", "resolved", "abandoned")


def _count(condition=None):
    query = select(func.count()).select_from(dead_letter_events)
    return (query if condition is None else query.where(condition)).scalar_subquery()


def dead_letter_counts(reader: Reader, statuses: tuple[str, ...]) -> dict[str, int]:
    """Dead letters of each of ``statuses``: as kept by triggers when the reader has them
    (:mod:`..rollups.dead_letter_counts`), else each counted over its own index range."""
    kept = reader.dead_letters()
    if kept is not None:
        return {s: kept.get(s, 0) for s in statuses}
    status = dead_letter_events.c.status
    row = reader.connection.execute(select(*(_count(status == s) for s in statuses))).one()
    return dict(zip(statuses, (int(n) for n in row), strict=True))


def dead_letters_and_total(reader: Reader, statuses: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Dead letters of each of ``statuses`` and of every status, as
    :func:`dead_letter_counts` reads them (raw: in one statement)."""
    kept = reader.dead_letters()
    if kept is not None:
        return {s: kept.get(s, 0) for s in statuses}, sum(kept.values())
    status = dead_letter_events.c.status
    row: Any = reader.connection.execute(
        select(*(_count(status == s) for s in statuses), _count())
    ).one()
    *counts, total = row
    return dict(zip(statuses, (int(n) for n in counts), strict=True)), int(total)


def dead_letter_totals(reader: Reader) -> tuple[int, int]:
    """(pending, total) dead letters."""
    counts, total = dead_letters_and_total(reader, ("pending",))
    return counts["pending"], total


def dead_letters_by_status(reader: Reader) -> dict[str, int]:
    """Dead letters per status: Omni's four always, any other status found too."""
    kept = reader.dead_letters()
    if kept is not None:
        return dict.fromkeys(DEAD_LETTER_STATUSES, 0) | kept
    connection = reader.connection
    counts, total = dead_letters_and_total(reader, DEAD_LETTER_STATUSES)
    if total != sum(counts.values()):
        status = dead_letter_events.c.status
        others: Any = connection.execute(
            select(status, func.count()).where(status.not_in(DEAD_LETTER_STATUSES)).group_by(status)
        )
        counts.update({key: int(n) for key, n in others})
    return counts
