"""Dialect-portable SQL constructs, each compiled once per dialect."""

from sqlalchemy import BigInteger, Integer, case, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from ..grid import SLOT_SECONDS


def sum_where(condition, value=1):
    """``SUM(CASE WHEN condition THEN value ELSE 0 END)``, 0 over no rows (portable FILTER)."""
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _column(element, compiler, kw) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


def _sqlite_slot(column: str, width: int) -> str:
    """SQLite: ``floor(epoch seconds of column / width)``, the index of its slot."""
    # Whole seconds: strftime rounds a fraction to milliseconds, and the last half
    # millisecond of the year 9999 rounds to a year it has no epoch for (NULL).
    seconds = f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"
    # Floor division that is also right before 1970 (SQLite's / truncates toward zero).
    return f"(({seconds}) - ((({seconds}) % {width}) + {width}) % {width}) / {width}"


# The width is part of the compiled SQL, so it must be part of the statement cache key.
_WIDTH = [("width", InternalTraversal.dp_plain_obj)]


class _Slotted(FunctionElement):
    """A function of a naive-UTC timestamp and the width of its slots, in seconds."""

    inherit_cache = True
    _traverse_internals = FunctionElement._traverse_internals + _WIDTH

    def __init__(self, column: ColumnElement, width: int = SLOT_SECONDS):
        self.width = int(width)
        super().__init__(column)


class slot_start(_Slotted):
    """The start of a naive-UTC timestamp's slot, as a GROUP BY key that is cheap per row.

    PostgreSQL: ``date_bin`` (integer arithmetic; ``extract(epoch ...)`` is numeric and
    costs several times more per row); SQLite: the slot index itself. Select
    :class:`slot_index` of it to get the index.
    """

    inherit_cache = True


def _pg_slot_start(column: str, width: int) -> str:
    """PostgreSQL: the start of the column's slot (``date_bin``, integer arithmetic)."""
    return f"date_bin(interval '{width} seconds', {column}, timestamp '1970-01-01')"


@compiles(slot_start, "postgresql")
def _slot_start_pg(element, compiler, **kw):
    return _pg_slot_start(_column(element, compiler, kw), element.width)


@compiles(slot_start, "sqlite")
def _slot_start_sqlite(element, compiler, **kw):
    return _sqlite_slot(_column(element, compiler, kw), element.width)


class slot_end(_Slotted):
    """The first instant after a naive-UTC timestamp's slot, comparable with the column."""

    inherit_cache = True


@compiles(slot_end, "postgresql")
def _slot_end_pg(element, compiler, **kw):
    start = _pg_slot_start(_column(element, compiler, kw), element.width)
    return f"({start} + interval '{element.width} seconds')"


@compiles(slot_end, "sqlite")
def _slot_end_sqlite(element, compiler, **kw):
    index = _sqlite_slot(_column(element, compiler, kw), element.width)
    # 'YYYY-MM-DD HH:MM:SS' sorts before every stored value of that second, as it must.
    return f"datetime((({index}) + 1) * {element.width}, 'unixepoch')"


class slot_index(FunctionElement):
    """The slot index of a :class:`slot_start` key (computed once per group)."""

    type = BigInteger()
    inherit_cache = True
    _traverse_internals = FunctionElement._traverse_internals + _WIDTH

    def __init__(self, start: slot_start):
        self.width = start.width
        super().__init__(start)


@compiles(slot_index, "postgresql")
def _slot_index_pg(element, compiler, **kw):
    start = _column(element, compiler, kw)
    # A slot start is a whole multiple of the width: the division is exact.
    return f"CAST(extract(epoch FROM {start}) AS BIGINT) / {element.width}"


@compiles(slot_index, "sqlite")
def _slot_index_sqlite(element, compiler, **kw):
    return _column(element, compiler, kw)


class json_array_length(FunctionElement):
    """Number of elements of a JSON array; 0 for SQL NULL, JSON null or any non-array."""

    type = Integer()
    inherit_cache = True


@compiles(json_array_length, "postgresql")
def _json_len_pg(element, compiler, **kw):
    column = _column(element, compiler, kw)
    return (
        f"CASE WHEN jsonb_typeof(CAST({column} AS jsonb)) = 'array' "
        f"THEN jsonb_array_length(CAST({column} AS jsonb)) ELSE 0 END"
    )


@compiles(json_array_length, "sqlite")
def _json_len_sqlite(element, compiler, **kw):
    column = _column(element, compiler, kw)
    return f"CASE WHEN json_type({column}) = 'array' THEN json_array_length({column}) ELSE 0 END"
