"""Sums of a kind's measures over a window: from raw rows, or from rollups plus raw rows.

Both readers answer the same question with the same result, so every query of the plugin
is written once against :meth:`RawReader.sums` and runs on either.
"""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, func, select, true, union_all

from ..queries.constructs import SLOT_SECONDS, epoch_slot
from .kinds import Kind
from .plan import plan, slot_of, split
from .state import RolledRange

SLOT_LABEL = "slot"


def _matches(column, value):
    if isinstance(value, list | tuple | set | frozenset):
        return column.in_(list(value))
    return column.is_(None) if value is None else column == value


def _raw_condition(time, lower, upper, upper_inclusive):
    conditions = []
    if lower is not None:
        conditions.append(time >= lower)
    if upper is not None:
        conditions.append(time <= upper if upper_inclusive else time < upper)
    return and_(true(), *conditions)


def _hashable(value):
    return tuple(value) if isinstance(value, list | tuple | set | frozenset) else value


class RawReader:
    """Sums straight from the source table (rollups off).

    A reader serves one response: it remembers each answer, so that parts of a response
    asking the same question (the 24-hour count, say) share one statement.
    """

    def __init__(self, connection):
        self.connection = connection
        self._answers: dict = {}

    def sums(
        self,
        kind: Kind,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        by: tuple[str, ...] = (),
        where: Mapping | None = None,
        by_slot: bool = False,
    ) -> list:
        """Rows of ``by`` (and ``slot`` when ``by_slot``) plus every measure, summed over
        the source rows with ``since <= time <= until`` whose dims match ``where``."""
        where = where or {}
        key = (kind.name, since, until, tuple(by), by_slot)
        key += tuple(sorted((d, _hashable(v)) for d, v in where.items()))
        if key not in self._answers:
            self._answers[key] = self._compute(kind, since, until, tuple(by), where, by_slot)
        return self._answers[key]

    def _compute(self, kind, since, until, by, where, by_slot):
        part = self._raw_part(kind, (since, until, True), by, where, by_slot)
        return self._totals(part.subquery(), kind, by, by_slot)

    def _raw_part(self, kind, piece, by, where, by_slot):
        keys = [kind.dims[d].label(d) for d in by]
        if by_slot:
            keys.append(epoch_slot(kind.time, SLOT_SECONDS).label(SLOT_LABEL))
        measures = [expr.label(m) for m, expr in kind.measures.items()]
        conditions = [_raw_condition(kind.time, *piece)]
        conditions += [_matches(kind.dims[d], v) for d, v in where.items()]
        if kind.where is not None:
            conditions.append(kind.where)
        query = select(*keys, *measures).select_from(kind.source).where(*conditions)
        return query.group_by(*keys) if keys else query

    def _totals(self, parts, kind, by, by_slot):
        keys = [parts.c[d] for d in by] + ([parts.c[SLOT_LABEL]] if by_slot else [])
        totals = [func.coalesce(func.sum(parts.c[m]), 0).label(m) for m in kind.measures]
        query = select(*keys, *totals)
        query = query.group_by(*keys) if keys else query.select_from(parts)
        width = len(keys)
        return [
            (*row[:width], *(int(value) for value in row[width:]))
            for row in self.connection.execute(query)
        ]


class RollupReader(RawReader):
    """Sums from the rollup tables for the rolled range and the source for the rest.

    ``totals`` (cumulative kind name -> stored slot range) may be given only when every
    statement of the reader sees one snapshot: a total table then answers a long range,
    corrected by the day and slot rows where the ranges differ.
    """

    def __init__(self, connection, rolled: RolledRange, totals: dict | None = None):
        super().__init__(connection)
        self.rolled = rolled
        self.totals = totals or {}
        self._lows: dict = {}

    def _compute(self, kind, since, until, by, where, by_slot):
        start = max(self.rolled.start, self._low_cut(kind))
        parts_plan = plan(since, until, start, self.rolled.end, by_slot=by_slot)
        parts = [self._raw_part(kind, piece, by, where, by_slot) for piece in parts_plan.raw]
        span = self.totals.get(kind.name)
        rolled = parts_plan.rolled
        if (
            span
            and rolled
            and abs(rolled[0] - span[0]) + abs(rolled[1] - span[1]) < (rolled[1] - rolled[0]) // 2
        ):
            parts.append(self._total_part(kind, by, where))
            # [a, b) = [F, T) - [F, a) + [T, b); a reversed range counts negatively.
            signed = [(span[0], rolled[0], -1), (span[1], rolled[1], 1)]
        else:
            signed = [(*rolled, 1)] if rolled else []
        for low, high, sign in signed:
            if low > high:
                low, high, sign = high, low, -sign
            days, slots = split(low, high, by_slot=by_slot)
            for level, ranges in (("day", days), ("slot", slots)):
                for a, b in ranges:
                    parts.append(self._rolled_part(kind, level, a, b, by, where, by_slot, sign))
        return self._totals(union_all(*parts).subquery(), kind, by, by_slot)

    def _rolled_part(self, kind, level, low, high, by, where, by_slot, sign=1):
        table = kind.table(level)
        keys = [table.c[d].label(d) for d in by]
        if by_slot:
            keys.append(table.c.bucket.label(SLOT_LABEL))
        conditions = [table.c.bucket >= low, table.c.bucket < high]
        conditions += [_matches(table.c[d], v) for d, v in where.items()]
        measures = [(table.c[m] if sign > 0 else -table.c[m]).label(m) for m in kind.measures]
        return select(*keys, *measures).where(*conditions)

    def _total_part(self, kind, by, where):
        table = kind.table("total")
        conditions = [_matches(table.c[d], v) for d, v in where.items()]
        measures = [table.c[m].label(m) for m in kind.measures]
        return select(*(table.c[d].label(d) for d in by), *measures).where(true(), *conditions)

    def _low_cut(self, kind) -> int:
        """The first slot after the source's oldest row: older slots may have lost rows
        to retention, so they are read raw."""
        key = (kind.source.name, kind.time.name)
        if key not in self._lows:
            oldest = self.connection.execute(select(func.min(kind.time))).scalar()
            self._lows[key] = slot_of(oldest) + 1 if oldest is not None else self.rolled.end
        return self._lows[key]
