"""Sums of a kind's measures over a window: from raw rows, or from rollups plus raw rows.

Both readers answer the same question with the same result, so every query of the plugin
is written once against :meth:`RawReader.sums` and runs on either.

A question is first described as parts (raw time ranges, rolled bucket ranges, a total
table) whose bounds are values; the statement for that shape of parts is built once, with
bound parameters, and reused by every later question of the same shape.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select, true, union_all

from ..queries.constructs import SLOT_SECONDS, epoch_slot
from .kinds import Kind
from .plan import plan, split
from .state import RolledRange, oldest_slot

SLOT_LABEL = "slot"
# Built statements by shape, for the process (the shapes are few: kinds x plans).
_STATEMENTS: dict = {}


def _is_many(value) -> bool:
    return isinstance(value, list | tuple | set | frozenset)


@dataclass(frozen=True)
class Question:
    """What a caller asks: a kind's measures summed by ``by`` over a window."""

    name: str
    kind: Kind = field(compare=False)
    since: datetime | None
    until: datetime | None
    by: tuple[str, ...]
    where: tuple[tuple[str, object], ...]
    by_slot: bool


@dataclass(frozen=True)
class Part:
    """One branch of the statement: ``raw`` rows of ``[low, high)`` (``high`` inclusive
    when ``inclusive``; ``None`` is open), rows of a rollup ``level`` in bucket range
    ``[low, high)`` counted with ``sign``, or the whole ``total`` table."""

    source: str
    low: object = None
    high: object = None
    inclusive: bool = False
    sign: int = 1

    def shape(self) -> tuple:
        """What the statement depends on (the bounds become parameters)."""
        return (self.source, self.low is None, self.high is None, self.inclusive, self.sign)


def _where_shape(where) -> tuple:
    return tuple((d, "null" if v is None else "many" if _is_many(v) else "one") for d, v in where)


def _where_conditions(columns, where, prefix):
    conditions = []
    for d, v in where:
        if v is None:
            conditions.append(columns[d].is_(None))
        elif _is_many(v):
            conditions.append(columns[d].in_(bindparam(f"{prefix}{d}", expanding=True)))
        else:
            conditions.append(columns[d] == bindparam(f"{prefix}{d}"))
    return conditions


def _build(question: Question, parts: list[Part]):
    """The statement for the question's shape and these parts' shapes."""
    kind, by, by_slot, where = question.kind, question.by, question.by_slot, question.where
    branches = []
    for n, part in enumerate(parts):
        low, high = bindparam(f"p{n}_low"), bindparam(f"p{n}_high")
        if part.source == "raw":
            keys = [kind.dims[d].label(d) for d in by]
            if by_slot:
                keys.append(epoch_slot(kind.time, SLOT_SECONDS).label(SLOT_LABEL))
            conditions = []
            if part.low is not None:
                conditions.append(kind.time >= low)
            if part.high is not None:
                conditions.append(kind.time <= high if part.inclusive else kind.time < high)
            conditions += _where_conditions(kind.dims, where, "w_")
            if kind.where is not None:
                conditions.append(kind.where)
            measures = [expr.label(m) for m, expr in kind.measures.items()]
            branch = select(*keys, *measures).select_from(kind.source)
            branch = branch.where(and_(true(), *conditions))
            branches.append(branch.group_by(*keys) if keys else branch)
            continue
        table = kind.table(part.source)
        keys = [table.c[d].label(d) for d in by]
        if by_slot:
            keys.append(table.c.bucket.label(SLOT_LABEL))
        conditions = _where_conditions(table.c, where, "w_")
        if part.source != "total":
            conditions += [table.c.bucket >= low, table.c.bucket < high]
        measures = [(table.c[m] * part.sign).label(m) for m in kind.measures]
        branches.append(select(*keys, *measures).where(and_(true(), *conditions)))
    rows = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    keys = [rows.c[d] for d in by] + ([rows.c[SLOT_LABEL]] if by_slot else [])
    totals = [func.coalesce(func.sum(rows.c[m]), 0).label(m) for m in kind.measures]
    query = select(*keys, *totals)
    return query.group_by(*keys) if keys else query.select_from(rows)


def _parameters(question: Question, parts: list[Part]) -> dict:
    values = {f"w_{d}": list(v) if _is_many(v) else v for d, v in question.where if v is not None}
    for n, part in enumerate(parts):
        if part.source != "total":
            values[f"p{n}_low"], values[f"p{n}_high"] = part.low, part.high
    return values


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
        items = tuple(sorted((d, tuple(v) if _is_many(v) else v) for d, v in (where or {}).items()))
        question = Question(kind.name, kind, since, until, tuple(by), items, by_slot)
        if question not in self._answers:
            self._answers[question] = self._run(question, self._parts(question))
        return self._answers[question]

    def _parts(self, question: Question) -> list[Part]:
        return [Part("raw", question.since, question.until, inclusive=True)]

    def _run(self, question: Question, parts: list[Part]) -> list:
        key = (
            question.kind.name,
            question.by,
            question.by_slot,
            _where_shape(question.where),
            tuple(part.shape() for part in parts),
        )
        statement = _STATEMENTS.get(key)
        if statement is None:
            statement = _STATEMENTS.setdefault(key, _build(question, parts))
        width = len(question.by) + question.by_slot
        return [
            (*row[:width], *(int(value) for value in row[width:]))
            for row in self.connection.execute(statement, _parameters(question, parts))
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

    def _parts(self, question: Question) -> list[Part]:
        kind = question.kind
        start = max(self.rolled.start, self._low_cut(kind))
        window = plan(question.since, question.until, start, self.rolled.end)
        parts = [Part("raw", low, high, inclusive) for low, high, inclusive in window.raw]
        span, rolled = self.totals.get(kind.name), window.rolled
        if (
            span
            and rolled
            and not question.by_slot
            and abs(rolled[0] - span[0]) + abs(rolled[1] - span[1]) < (rolled[1] - rolled[0]) // 2
        ):
            parts.append(Part("total"))
            # [a, b) = [F, T) - [F, a) + [T, b); a reversed range counts negatively.
            signed = [(span[0], rolled[0], -1), (span[1], rolled[1], 1)]
        else:
            signed = [(*rolled, 1)] if rolled else []
        for low, high, sign in signed:
            if low > high:
                low, high, sign = high, low, -sign
            days, slots = split(low, high, by_slot=question.by_slot)
            parts += [Part("day", a, b, sign=sign) for a, b in days]
            parts += [Part("slot", a, b, sign=sign) for a, b in slots]
        return parts

    def _low_cut(self, kind) -> int:
        """The first slot after the source's oldest row: older slots may have lost rows
        to retention, so they are read raw."""
        key = (kind.source.name, kind.time.name)
        if key not in self._lows:
            oldest = oldest_slot(self.connection, kind)
            self._lows[key] = self.rolled.end if oldest is None else oldest + 1
        return self._lows[key]
