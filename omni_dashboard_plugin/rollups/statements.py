"""The SQL of a reader's questions, built once per shape with bound parameters.

A question is described as parts (raw time ranges, rolled bucket ranges, a total table)
whose bounds are values; the statement for that shape of parts is built once and reused by
every later question of the same shape, with the bounds as parameters. Several questions
are read in one statement by :func:`run_many`, each row tagged with its question.
"""

from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)

from ..cache import Recent
from ..grid import FINES_PER_SLOT, SLOT_SECONDS
from ..reading import is_many
from ..sql.built import built
from ..sql.constructs import slot_index, slot_start
from .kinds import Kind
from .tail import rows as tail_rows

SLOT_LABEL = "slot"
# The column of run_many's rows that names their question (its position in the call).
TAG_LABEL = "question"
# The statements of several questions (run_many): a shape per combination of the questions'
# shapes, which move with the clock through the day, so only the recently used are kept
# (a few hundred kB each with SQLAlchemy's compiled form).
BATCHES = Recent(64)


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

    @property
    def width(self) -> int:
        """How many key columns lead each result row."""
        return len(self.by) + self.by_slot


@dataclass(frozen=True)
class Part:
    """One branch of the statement: ``raw`` rows of ``[low, high)`` (``high`` inclusive
    when ``inclusive``; ``None`` is open), rows of a rollup ``level`` in bucket range
    ``[low, high)``, the ``tail`` table's rows of buckets from ``low`` on, or the whole
    ``total`` table; each counted with ``sign``."""

    source: str
    low: datetime | int | None = None
    high: datetime | int | None = None
    inclusive: bool = False
    sign: int = 1

    def shape(self) -> tuple:
        """What the statement depends on (the bounds become parameters)."""
        return (self.source, self.low is None, self.high is None, self.inclusive, self.sign)


def _where_shape(where) -> tuple:
    return tuple((d, "null" if v is None else "many" if is_many(v) else "one") for d, v in where)


def _where_conditions(columns, where, prefix):
    conditions = []
    for d, v in where:
        if v is None:
            conditions.append(columns[d].is_(None))
        elif is_many(v):
            conditions.append(columns[d].in_(bindparam(f"{prefix}{d}", expanding=True)))
        else:
            conditions.append(columns[d] == bindparam(f"{prefix}{d}"))
    return conditions


def _following_deletes(kind: Kind, table) -> dict:
    """The rollup table's dims, those of ``set_null`` NULL where the parent is gone."""
    columns = {d: table.c[d] for d in kind.dims}
    for d, key in kind.set_null.items():
        columns[d] = case((table.c[d].in_(select(key)), table.c[d]))
    return columns


def _rolled_conditions(kind: Kind, table, where, prefix: str) -> list:
    """``where`` on a rollup table as its source would answer it: a ``set_null`` dim holds
    its value only while the parent exists (NULL once it is gone). Written on the stored
    column, so that an index leading with it serves the filter."""
    conditions = []
    for (d, v), condition in zip(where, _where_conditions(table.c, where, prefix), strict=True):
        parent = kind.set_null.get(d)
        if parent is not None:
            exists = table.c[d].in_(select(parent))
            condition = or_(condition, ~exists) if v is None else and_(condition, exists)
        conditions.append(condition)
    return conditions


def _raw_rows(question: Question, part: Part, prefix: str, n: int) -> Select:
    """The source's rows of ``part``'s time range, summed by the question's keys."""
    kind = question.kind
    keys = [kind.dims[d].label(d) for d in question.by]
    groups = list(keys)
    if question.by_slot:
        start = slot_start(kind.time, SLOT_SECONDS)
        keys.append(slot_index(start).label(SLOT_LABEL))
        groups.append(start)
    conditions = []
    if part.low is not None:
        conditions.append(kind.time >= bindparam(f"{prefix}{n}_low"))
    if part.high is not None:
        high: BindParameter[datetime] = bindparam(f"{prefix}{n}_high")
        conditions.append(kind.time <= high if part.inclusive else kind.time < high)
    conditions += _where_conditions(kind.dims, question.where, f"{prefix}w_")
    if kind.where is not None:
        conditions.append(kind.where)
    measures = [
        (expr if part.sign == 1 else expr * part.sign).label(m) for m, expr in kind.measures.items()
    ]
    branch = select(*keys, *measures).select_from(kind.source)
    branch = branch.where(and_(true(), *conditions))
    return branch.group_by(*groups) if groups else branch


def _tail_rows(question: Question, part: Part, prefix: str, n: int) -> Select:
    """The tail's rows of the buckets from ``part.low`` on: like raw rows, grouped by slot
    already (no parent to follow: see .tail); the rows from the cut on summed only for the
    values the question keeps of each dim (``prefix`` a_ parameters, arrays)."""
    tail = question.kind.tail
    assert tail is not None  # a reader reads the tail only of a kind that keeps one
    narrowed = [d for d, v in question.where if v is not None and d in tail.dims]
    table = tail_rows(tail, {d: bindparam(f"{prefix}a_{d}") for d in narrowed}).subquery()
    keys: list[ColumnElement[Any]] = [table.c[d] for d in question.by]
    if question.by_slot:
        keys.append(table.c.bucket.label(SLOT_LABEL))
    conditions = [
        table.c.bucket >= bindparam(f"{prefix}{n}_low"),
        *_where_conditions(table.c, question.where, f"{prefix}w_"),
    ]
    measures = [table.c[m] for m in question.kind.measures]
    return select(*keys, *measures).where(and_(*conditions))


def _rolled_rows(question: Question, part: Part, prefix: str, n: int) -> Select:
    """The rows of the rollup table ``part.source``: a level's buckets in ``[low, high)``
    ('fine': the fine buckets of its fine kind, see .fine), or the whole total table."""
    kind = question.kind
    table = kind.table(part.source)
    columns = _following_deletes(kind, table)
    keys = [columns[d].label(d) for d in question.by]
    if question.by_slot:
        slot: ColumnElement[Any] = table.c.bucket
        if part.source == "fine":  # recent buckets: positive, so the division is the floor
            slot = slot // FINES_PER_SLOT
        keys.append(slot.label(SLOT_LABEL))
    conditions = _rolled_conditions(kind, table, question.where, f"{prefix}w_")
    # A NULL dim references no parent: no delete removes its source rows.
    conditions += [
        or_(table.c[d].is_(None), table.c[d].in_(select(key))) for d, key in kind.cascade.items()
    ]
    if part.source != "total":
        conditions += [
            table.c.bucket >= bindparam(f"{prefix}{n}_low"),
            table.c.bucket < bindparam(f"{prefix}{n}_high"),
        ]
    measures = [(table.c[m] * part.sign).label(m) for m in kind.measures]
    return select(*keys, *measures).where(and_(true(), *conditions))


# How each source of a part is read (any other source is a rollup table).
_READINGS = {"raw": _raw_rows, "tail": _tail_rows}


def _build(question: Question, parts: list[Part], prefix: str = "p") -> Select:
    """The statement for the question's shape and these parts' shapes: each part's rows,
    summed by the question's keys."""
    branches = [
        _READINGS.get(part.source, _rolled_rows)(question, part, prefix, n)
        for n, part in enumerate(parts)
    ]
    rows = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    keys = [rows.c[d] for d in question.by] + ([rows.c[SLOT_LABEL]] if question.by_slot else [])
    # Integers from the database itself (PostgreSQL sums bigints as numeric).
    totals = [
        cast(func.coalesce(func.sum(rows.c[m]), 0), BigInteger).label(m)
        for m in question.kind.measures
    ]
    query = select(*keys, *totals)
    return query.group_by(*keys) if keys else query.select_from(rows)


def _tagged(question: Question, parts: list[Part], tag: int, prefix: str, layout: tuple):
    """The question's rows in the columns of ``layout`` (``{dim: type}`` and the measures of
    every question of the statement): ``tag``, the dims, the slot, the measures; those it
    lacks NULL (typed: a UNION of more than two branches matches their types pairwise)
    or 0."""
    dims, measures = layout
    rows = _build(question, parts, prefix).subquery()
    keys = [rows.c[d] if d in question.by else cast(null(), t).label(d) for d, t in dims.items()]
    slot = rows.c[SLOT_LABEL] if question.by_slot else cast(null(), BigInteger).label(SLOT_LABEL)
    values = [
        rows.c[m] if m in question.kind.measures else literal_column("0").label(m) for m in measures
    ]
    return select(literal_column(str(tag)).label(TAG_LABEL), *keys, slot, *values)


def _parameters(question: Question, parts: list[Part], prefix: str = "p") -> dict:
    values: dict = {}
    for d, v in question.where:
        if v is not None:
            values[f"{prefix}w_{d}"] = list(v) if is_many(v) else v
            # The values as an array, for the tail's function (unused by other parts).
            values[f"{prefix}a_{d}"] = list(v) if is_many(v) else [v]
    for n, part in enumerate(parts):
        if part.source != "total":
            values[f"{prefix}{n}_low"], values[f"{prefix}{n}_high"] = part.low, part.high
    return values


def _shape(question: Question, parts: list[Part]) -> tuple:
    return (
        question.kind.name,
        question.by,
        question.by_slot,
        _where_shape(question.where),
        tuple(part.shape() for part in parts),
    )


def run(connection, question: Question, parts: list[Part]) -> list[tuple]:
    """Rows of the question's keys and summed measures over ``parts``."""
    statement = built(_shape(question, parts), lambda: _build(question, parts))
    return [tuple(row) for row in connection.execute(statement, _parameters(question, parts)).all()]


def run_many(connection, asked: list[tuple[Question, list[Part]]]) -> list[list[tuple]]:
    """:func:`run` for each ``(question, parts)`` of ``asked``, in one statement (one round
    trip): each question's rows, in the order asked."""
    if len(asked) == 1:
        return [run(connection, *asked[0])]
    dims: dict = {}
    for question, _ in asked:
        for d, column in question.kind.dims.items():
            dims.setdefault(d, column.type)
    measures = tuple(dict.fromkeys(m for question, _ in asked for m in question.kind.measures))
    layout = (dims, measures)

    def build():
        return union_all(
            *(
                _tagged(question, parts, tag, f"q{tag}_", layout)
                for tag, (question, parts) in enumerate(asked)
            )
        )

    key = ("many", tuple(_shape(question, parts) for question, parts in asked))
    values: dict = {}
    for tag, (question, parts) in enumerate(asked):
        values.update(_parameters(question, parts, f"q{tag}_"))
    found: list[list] = [[] for _ in asked]
    for row in connection.execute(BATCHES.get_or(key, build), values).all():
        found[row[0]].append(row)
    picked, names = [], list(dims)
    for (question, _), rows in zip(asked, found, strict=True):
        keys = [names.index(d) for d in question.by] + [len(names)] * question.by_slot
        picks = [1 + i for i in keys]
        picks += [2 + len(names) + measures.index(m) for m in question.kind.measures]
        pick = itemgetter(*picks)
        if len(picks) == 1:  # itemgetter of one index returns the value, not a tuple
            picked.append([(pick(row),) for row in rows])
        else:
            picked.append([pick(row) for row in rows])
    return picked
