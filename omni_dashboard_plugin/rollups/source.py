"""A kind's source rows grouped by slot and dims: what a slot table holds."""

from sqlalchemy import select

from ..grid import SLOT_SECONDS, slot_time
from ..sql.constructs import slot_index, slot_start


def by_slot(kind, low, high, *, width: int = SLOT_SECONDS, where=()):
    """SELECT slot, dims, measures of the source rows of slots ``[low, high)`` (``None``:
    open) that meet the conditions ``where`` too, by slot, or by bucket of ``width``
    seconds (inserted in that order, a range of slots lies on few pages). The grouping is
    a subquery so that PostgreSQL hashes the raw rows and sorts only the groups.

    ``low`` and ``high`` are slots, or bound parameters that hold their first instants (a
    statement built once for every range)."""
    start = slot_start(kind.time, width)
    conditions = [kind.time >= _instant(low)]
    if high is not None:
        conditions.append(kind.time < _instant(high))
    if kind.where is not None:
        conditions.append(kind.where)
    conditions += where
    grouped = (
        select(
            slot_index(start).label("bucket"),
            *(expr.label(d) for d, expr in kind.dims.items()),
            *(expr.label(m) for m, expr in kind.measures.items()),
        )
        .select_from(kind.source)
        .where(*conditions)
        .group_by(start, *kind.dims.values())
        .subquery()
    )
    return select(grouped).order_by(grouped.c.bucket)


def _instant(bound):
    """The first instant of a slot, or the bound parameter that holds it."""
    return slot_time(bound) if isinstance(bound, int) else bound
