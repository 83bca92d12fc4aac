"""Dialect-portable SQL constructs, each compiled once per dialect."""

from sqlalchemy import BigInteger, Integer, case, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

SLOT_SECONDS = 900


def sum_where(condition, value=1):
    """``SUM(CASE WHEN condition THEN value ELSE 0 END)``, 0 over no rows (portable FILTER)."""
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


class epoch_slot(FunctionElement):
    """``floor(epoch seconds of a naive-UTC timestamp / width)``: the index of its slot."""

    type = BigInteger()
    inherit_cache = True

    def __init__(self, column: ColumnElement, width: int = SLOT_SECONDS):
        self.width = int(width)
        super().__init__(column)


@compiles(epoch_slot, "postgresql")
def _epoch_slot_pg(element, compiler, **kw):
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"CAST(floor(extract(epoch FROM {column}) / {element.width}) AS BIGINT)"


@compiles(epoch_slot, "sqlite")
def _epoch_slot_sqlite(element, compiler, **kw):
    column = compiler.process(next(iter(element.clauses)), **kw)
    seconds = f"CAST(strftime('%s', {column}) AS INTEGER)"
    width = element.width
    # Floor division that is also right before 1970 (SQLite's / truncates toward zero).
    return f"(({seconds}) - ((({seconds}) % {width}) + {width}) % {width}) / {width}"


class json_array_length(FunctionElement):
    """Number of elements of a JSON array; 0 for SQL NULL, JSON null or any non-array."""

    type = Integer()
    inherit_cache = True


@compiles(json_array_length, "postgresql")
def _json_len_pg(element, compiler, **kw):
    column = compiler.process(next(iter(element.clauses)), **kw)
    return (
        f"CASE WHEN jsonb_typeof(CAST({column} AS jsonb)) = 'array' "
        f"THEN jsonb_array_length(CAST({column} AS jsonb)) ELSE 0 END"
    )


@compiles(json_array_length, "sqlite")
def _json_len_sqlite(element, compiler, **kw):
    column = compiler.process(next(iter(element.clauses)), **kw)
    return f"CASE WHEN json_type({column}) = 'array' THEN json_array_length({column}) ELSE 0 END"
