"""The raw tail kept by triggers on ``omni_events`` (PostgreSQL), so no read scans recent rows.

The rows after the rolled slots are young: they keep arriving and changing status, so they
are not rolled up, and reading them raw costs the write rate times the horizon on every
request. Instead, statement triggers on ``omni_events`` add, in the same transaction as
every insert, update and delete, the signed change of each tail kind's measures by slot
and dims to the kind's table (a TRUNCATE empties it). Any snapshot therefore sees tail
rows that sum, slot by slot, to exactly the raw rows it sees, from the slot that the
``tail`` row of the state table names on.

The refresh, once caught up, seeds the tables from the raw rows after the watermark (the
first time after the triggers were created, in one statement per table, so a concurrent
writer's change is counted by either the seed or its trigger, never both); later it folds
them into one row per slot and dims and drops slots more than a day before the watermark
(a read that started before a refresh still finds the slots it reads).
"""

import functools
import logging

from sqlalchemy import DDL, Column, delete, func, insert, or_, select, union_all, update
from sqlalchemy import column as sql_column
from sqlalchemy import exc as sa_exc
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.visitors import replacement_traverse

from ..grid import SLOT_SECONDS, SLOTS_PER_DAY
from ..sql.constructs import slot_index, slot_start
from ..sql.tables import omni_events
from .kinds import PREFIX, TAILS, state
from .locks import TAIL_INSTALL as _INSTALL_LOCK
from .source import by_slot
from .triggers import StatementTriggers, schema_of

log = logging.getLogger(__name__)

STATE_NAME = "tail"
TRIGGERS = StatementTriggers(f"{PREFIX}tail_keep", omni_events.name, f"{PREFIX}tail")
# Slots kept before the watermark: a read that took an older watermark still finds its own.
KEPT_BEFORE = SLOTS_PER_DAY
# Installers of several processes take turns (function and triggers are replaced whole).


def _on_transition(kind, rows: str):
    """The kind's expressions over the transition table ``rows`` instead of its source."""
    transition = sql_table(rows, *(sql_column(c.name, c.type) for c in kind.source.c))

    def swap(element):
        if isinstance(element, Column) and element.table is kind.source:
            return transition.c[element.name]
        return None

    return transition, lambda expression: replacement_traverse(expression, {}, swap)


def _changes(kind, rows: str, sign: int):
    """SELECT bucket, dims, ``sign`` * measures of the transition table ``rows``."""
    transition, on = _on_transition(kind, rows)
    start = slot_start(on(kind.time), SLOT_SECONDS)
    dims = [on(expr) for expr in kind.dims.values()]
    query = select(
        slot_index(start).label("bucket"),
        *(dim.label(d) for dim, d in zip(dims, kind.dims, strict=True)),
        *((on(expr) if sign > 0 else -on(expr)).label(m) for m, expr in kind.measures.items()),
    ).select_from(transition)
    if kind.where is not None:
        query = query.where(on(kind.where))
    return query.group_by(start, *dims)


def _summed(kind, rows, table):
    """INSERT INTO ``table`` the rows of ``rows`` summed by bucket and dims (none all 0)."""
    dims = [rows.c[d] for d in kind.dims]
    sums = [func.sum(rows.c[m]) for m in kind.measures]
    folded = (
        select(rows.c.bucket, *dims, *sums)
        .group_by(rows.c.bucket, *dims)
        .having(or_(*(total != 0 for total in sums)))
    )
    return insert(table).from_select(["bucket", *kind.dims, *kind.measures], folded)


def _keep_sql(kind, operation: str, schema: str) -> str:
    """The trigger function's statement that adds an operation's changes to the kind's table."""
    parts = []
    if operation in ("insert", "update"):
        parts.append(_changes(kind, "new_rows", 1))
    if operation in ("delete", "update"):
        parts.append(_changes(kind, "old_rows", -1))
    rows = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("changes")
    table = kind.table("tail")
    statement = _summed(kind, rows, table)
    sql = str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    return sql.replace(f"INSERT INTO {table.name} ", f'INSERT INTO "{schema}".{table.name} ', 1)


@functools.cache
def _body(schema: str) -> str:
    """The trigger function's body (compiled once per schema: every refresh checks it)."""
    empty = " ".join(f'DELETE FROM "{schema}".{kind.table("tail").name};' for kind in TAILS)
    branches = [f"IF TG_OP = 'TRUNCATE' THEN\n    {empty}"]
    for operation in ("insert", "update", "delete"):
        statements = "\n    ".join(f"{_keep_sql(kind, operation, schema)};" for kind in TAILS)
        branches.append(f"ELSIF TG_OP = '{operation.upper()}' THEN\n    {statements}")
    return "\nBEGIN\n  " + "\n  ".join(branches) + "\n  END IF;\n  RETURN NULL;\nEND\n"


def install(engine) -> bool:
    """Create the triggers (PostgreSQL), unless they are in place; the next refresh seeds
    the tables. False (and a warning) elsewhere or when the database user may not create
    them: the tail is then read raw."""
    if engine.dialect.name != "postgresql":
        return False
    try:
        with engine.begin() as connection:
            connection.execute(select(func.pg_advisory_xact_lock(_INSTALL_LOCK)))
            replaced = TRIGGERS.keep_function_current(connection, _body(schema_of(connection)))
            in_place = connection.execute(select(TRIGGERS.in_place())).scalar()
            if not in_place:
                for statement in TRIGGERS.drops() + TRIGGERS.creates():
                    connection.execute(DDL(statement))
            if replaced or not in_place:
                # What changed while there were no triggers, or the function kept other
                # tables (another release's), is not in the tables: seed them again.
                connection.execute(delete(state).where(state.c.name == STATE_NAME))
        return True
    except sa_exc.DBAPIError as exc:
        log.warning(
            "the raw tail is read raw (its cost grows with the write rate): the triggers "
            "that keep it cannot be created (%s); grant the database user ownership of "
            "omni_events (or TRIGGER on it) to have it kept",
            exc.orig,
        )
        return False


def uninstall(engine) -> None:
    """Drop the triggers, if any (``OMNI_DASHBOARD_ROLLUPS_TAIL=raw``)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.begin() as connection:
            for statement in TRIGGERS.drops():
                connection.execute(DDL(statement))
            connection.execute(delete(state).where(state.c.name == STATE_NAME))
    except sa_exc.DBAPIError as exc:
        log.warning("the tail triggers could not be dropped: %s", exc.orig)


def usable(connection):
    """A condition on the state table's rows: the tail's row only while its triggers are
    in place (a host migration that recreated omni_events drops them)."""
    if connection.dialect.name != "postgresql":
        return state.c.name != STATE_NAME
    return or_(state.c.name != STATE_NAME, TRIGGERS.in_place())


def keep(connection, watermark: int) -> None:
    """Inside the refresh's transaction, caught up at ``watermark``: seed the tables, or
    fold them and drop old slots; forget them when the triggers are gone."""
    if connection.dialect.name != "postgresql":
        return
    named = state.c.name == STATE_NAME
    if not connection.execute(select(TRIGGERS.in_place())).scalar():
        connection.execute(delete(state).where(named))
        return
    start = connection.execute(select(state.c.start_slot).where(named)).scalar()
    for kind in TAILS:
        table = kind.table("tail")
        # One statement, one snapshot: the rows it deletes are the rows it replaces.
        gone = delete(table)
        if start is not None:
            gone = gone.where(table.c.bucket >= watermark - KEPT_BEFORE)
        gone = gone.returning(*table.c).cte("gone")
        rows = by_slot(kind, watermark, None).subquery() if start is None else gone
        connection.execute(_summed(kind, rows, table).add_cte(gone))
        if start is not None:
            connection.execute(delete(table).where(table.c.bucket < watermark - KEPT_BEFORE))
    if start is None:
        values = {"name": STATE_NAME, "start_slot": watermark, "watermark_slot": watermark}
        connection.execute(insert(state).values(**values))
    else:
        first = max(start, watermark - KEPT_BEFORE)
        connection.execute(update(state).where(named).values(start_slot=first))
