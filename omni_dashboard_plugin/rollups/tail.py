"""The raw tail kept for reads (PostgreSQL): rows after a cut read from their source, rows
before it kept by the refresh and a log that writes to aged rows append to.

The rows after the rolled slots are young: they keep arriving and changing status, so they
are not rolled up, and reading them raw costs the write rate times the horizon on every
request. Two sources are kept so (:data:`.kinds.LOGGED`): omni_events by ``received_at`` and
automation_logs by ``created_at`` (Omni logs every automation it evaluates, a tenth or more
of the events). Their rows are split at a moment, the cut, a few seconds before now. Rows
dated from the cut on are read from the source through its index on that column. Rows
before it are kept: the refresh folds them into kept tables, one row per slot and dims of
each read family, and triggers on each source log, in the writer's transaction, a change to
an *aged* row (dated at least the margin before the database's clock) into that source's
log: a row trigger appends the new row (+1) of such an insert and the old (-1) and new (+1)
rows of such an update that changes a column the tail kinds read; a statement trigger
appends the deleted rows (-1) of a DELETE but those before the kept slots (retention), and
a TRUNCATE empties the log and the kept rows. The row triggers' WHEN clause is that one
comparison, so a write to a young row, Omni's every insert and status move, calls no
function.

Each tail kind reads a view: the kept rows, the log's rows dated before the cut, and the
source's rows from the cut on, reading the cut in the same statement (a read narrowed by a
dim reads the same parts, passing the values it keeps to the function that sums the rows
from the cut on: :func:`rows`). Any snapshot
therefore sees rows that sum, slot by slot, to exactly the raw rows it sees, from the slot
that the ``tail`` row of the state table names on.

Each refresh first records a mark: the clock, then a transaction id handed out after it. The
refresh, once caught up, moves the cut (one for both sources) to the newest mark older than
every running transaction, less the margin (a transaction with a later id passed over only
rows dated after that), folding the sources' rows between the old and the new cut and the
logs' rows before the old cut into the kept tables, in one statement; the first time after
the triggers were created it seeds the kept tables from the raw rows after the watermark
instead, emptying the logs in the same statement (so a concurrent writer's change is counted
by either the seed or the log, never both). Slots more than a day before the watermark are
dropped (a read that started before a refresh still finds the slots it reads).
"""

import functools
import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    ColumnClause,
    DateTime,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    union_all,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import functions
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse

from ..grid import SLOT_SECONDS, SLOTS_PER_DAY, slot_time
from ..sql.built import built
from ..sql.constructs import slot_index, slot_start
from ..sql.snapshot import without_jit
from .kinds import LOGGED, PREFIX, TAILS, Logged, state, tail_cut, tail_marks
from .locks import TAIL_INSTALL as _INSTALL_LOCK
from .source import by_slot
from .triggers import Triggers, function_body, function_drops, schema_of

log = logging.getLogger(__name__)

STATE_NAME = "tail"
# PostgreSQL's SQLSTATE for a missing privilege (not the owner, no TRIGGER, no CREATE).
_INSUFFICIENT_PRIVILEGE = "42501"
# The clock the margin is measured by: the database's, as a UTC timestamp like Omni's
# columns, whatever the time zone of the writer's session.
_CLOCK = "(clock_timestamp() AT TIME ZONE 'UTC')"


def functions_of(logged: Logged) -> tuple[str, str, str]:
    """The names of the functions of the source's triggers: of an insert, of an update and
    of a statement (delete, truncate)."""
    insert_function = f"{PREFIX}{logged.name}_log"
    return insert_function, f"{insert_function}_update", f"{insert_function}_bulk"


def triggers(logged: Logged, margin_seconds: int = 0) -> Triggers:
    """The triggers on the source: a row trigger per insert and update of a row dated
    ``margin_seconds`` or more before the database's clock (no call for a younger one: its
    WHEN clause is a single comparison), a statement trigger per delete and truncate. Their
    names do not depend on the margin."""
    aged = f"< {_CLOCK} - interval '{margin_seconds} seconds'"
    time = logged.time.name
    inserted, updated, bulk = functions_of(logged)
    return Triggers(
        inserted,
        logged.source.name,
        f"{PREFIX}{logged.name}_aged",
        (
            (
                "insert",
                "insert",
                f"FOR EACH ROW WHEN (NEW.{time} {aged}) EXECUTE FUNCTION {inserted}()",
            ),
            (
                "update",
                "update",
                f"FOR EACH ROW WHEN (least(OLD.{time}, NEW.{time}) {aged}) "
                f"EXECUTE FUNCTION {updated}()",
            ),
            (
                "delete",
                "delete",
                f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {bulk}()",
            ),
            ("truncate", "truncate", f"FOR EACH STATEMENT EXECUTE FUNCTION {bulk}()"),
        ),
    )


# The triggers of each source by name (what a read checks is in place).
NAMED = tuple(triggers(logged) for logged in LOGGED)
# The tables they are on.
SOURCES = tuple(logged.source.name for logged in LOGGED)
# Slots kept before the watermark: a read that took an older watermark still finds its own.
KEPT_BEFORE = SLOTS_PER_DAY


def in_place():
    """A condition: every source's triggers exist and are enabled."""
    return and_(*(named.in_place() for named in NAMED))


def logged_of(kind) -> Logged:
    """The source whose triggers keep the tail kind ``kind``."""
    return next(logged for logged in LOGGED if any(kind is k for k in logged.kinds))


def _on(kind, rows):
    """A function turning the kind's expressions over its source into ones over ``rows``
    (a selectable with the source's columns of the same names)."""

    def swap(element: ExternallyTraversible, **kw: Any) -> ExternallyTraversible | None:
        if isinstance(element, Column) and element.table is kind.source:
            return rows.c[element.name]
        return None

    return lambda expression: replacement_traverse(expression, {}, swap)


def _per_row(measure):
    """A count or sum measure's value for one row: count(*) is 1, count(x) is 1 where x is
    not NULL, sum(x) is x (the kinds' measures are counts and sums, see .kinds)."""

    def swap(element: ExternallyTraversible, **kw: Any) -> ExternallyTraversible | None:
        if isinstance(element, functions.count):
            (argument,) = element.clauses
            if getattr(argument, "name", None) == "*":
                return literal(1)
            return case((argument.is_not(None), 1), else_=0)
        if isinstance(element, functions.sum):
            (argument,) = element.clauses
            return argument
        return None

    return replacement_traverse(measure, {}, swap)


def _changes(kind, rows):
    """SELECT bucket, dims, signed measures of each of the log rows ``rows``."""
    on = _on(kind, rows)
    query = select(
        slot_index(slot_start(on(kind.time), SLOT_SECONDS)).label("bucket"),
        *(on(expr).label(d) for d, expr in kind.dims.items()),
        *((rows.c.sign * on(_per_row(expr))).label(m) for m, expr in kind.measures.items()),
    )
    return query.where(on(kind.where)) if kind.where is not None else query


def _summed(kind, rows, target):
    """INSERT INTO ``target`` the rows of ``rows`` summed by bucket and dims (none all 0)."""
    dims = [rows.c[d] for d in kind.dims]
    sums = [func.sum(rows.c[m]) for m in kind.measures]
    folded = (
        select(rows.c.bucket, *dims, *sums)
        .group_by(rows.c.bucket, *dims)
        .having(or_(*(total != 0 for total in sums)))
    )
    return insert(target).from_select(["bucket", *kind.dims, *kind.measures], folded)


def _pg(statement) -> str:
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


# The cut as a STABLE function, not a subquery, in the views: the planner evaluates a stable
# function when it estimates (a subquery is an unknown to it, `received_at >= ?` a third of
# omni_events: at 10M events a plan with parallel workers and 1.3 s of JIT compilation for
# the few seconds of rows it reads). At run time it reads the cut in the calling
# statement's snapshot, as the subquery did.
CUT_FUNCTION = f"{PREFIX}tail_cut_at"


def cut_at() -> functions.Function:
    """A call of the cut's function (a stable function: see :data:`CUT_FUNCTION`)."""
    return functions.Function(CUT_FUNCTION, type_=tail_cut.c.cut.type)


def _cut_function_body(schema: str) -> str:
    return f'SELECT cut FROM "{schema}".{tail_cut.name}'


def _keep_cut_function_current(connection) -> None:
    """Create the cut's function, or replace it when its body is not this release's."""
    body = _cut_function_body(schema_of(connection))
    if function_body(connection, CUT_FUNCTION) != body:
        connection.execute(
            DDL(
                f"CREATE OR REPLACE FUNCTION {CUT_FUNCTION}() RETURNS timestamp LANGUAGE sql "
                f"STABLE PARALLEL SAFE AS $body${body}$body$"
            )
        )


# The rows from the cut on are read through a function of each tail kind, planned with the
# index scan and sorts off. The planner's estimate of them comes from omni_events'
# statistics, whose newest value is what the last ANALYZE saw: it guesses a handful of rows
# for the few seconds of thousands there are, and plans an index scan (one heap visit a row)
# and a sort of them by every dim. Read with a bitmap scan (each page once) and hashed, they
# took 2.8 ms at p50 instead of 6.7 (p99 6.6 against 14.9) for some 5,000 rows under 2,000
# single-row writes a second (docs/rollups.md). The settings hold inside the function only.
# A function that sets them may not run in a parallel query: it is PARALLEL UNSAFE (the
# default), which rollup reads are anyway (their workers are off).
_RECENT_SETTINGS = "SET enable_indexscan = off SET enable_sort = off SET search_path FROM CURRENT"
# The columns its query names are its tables', not the function's result columns.
_USE_COLUMN = "#variable_conflict use_column\n"


def recent_function(kind) -> str:
    """The name of the function that reads the tail kind's rows from the cut on. Not the
    name of an earlier release's, which took no parameters (``_recent``): a call without
    arguments would find both, so a node of either release could not create its view while
    the other's function is there (as in a rolling deploy)."""
    return f"{kind.table('tail').name}_recent_rows"


def _recent_functions(kind) -> tuple[str, str]:
    """The names of the kind's function of the rows from the cut on, this release's and an
    earlier one's."""
    return recent_function(kind), f"{kind.table('tail').name}_recent"


def _only(dim: str) -> str:
    """The name of the recent rows' function's parameter that keeps the values of ``dim``."""
    return f"only_{dim}"


def _array_of(kind, dim: str) -> postgresql.ARRAY:
    """The type of that parameter: an array of the dim's values, of any length (a cast to
    ``varchar(50)[]`` would cut a longer value a read keeps to one it does not)."""
    type_ = kind.table("kept").c[dim].type
    return postgresql.ARRAY(String() if isinstance(type_, String) else type_)


def _kept_values(kind) -> list:
    """The conditions of the recent rows' function: each dim's value is among its
    parameter's (an array), unless that is NULL (the default: every value). Written so
    that no index serves them (coalesce): the rows are found by the cut's index alone,
    not by a BitmapAnd with the index on channel, whose rows of a channel the planner may
    guess few of."""
    conditions = []
    for d, expr in kind.dims.items():
        values = literal_column(_only(d), type_=_array_of(kind, d))
        conditions.append(or_(values.is_(None), func.coalesce(expr == any_(values), false())))
    return conditions


def rows(kind, only: dict | None = None):
    """SELECT the tail kind's rows: its kept rows, the log's rows dated before the cut and,
    from the cut on, the source's rows by slot and dims, read by its function; of those the
    function reads, only the values of each dim of ``only`` (``{dim: a list of values}``,
    bound parameters: a read narrowed by a dim passes the values it keeps, so that the
    function sums only those rows; the read keeps its own condition on every part)."""
    kept = kind.table("kept")
    columns = ["bucket", *kind.dims, *kind.measures]
    # The log's rows are compared with the cut read once (an InitPlan): the function in a
    # filter runs per row, 2.4 µs each: milliseconds a read at thousands of log rows.
    log = logged_of(kind).log
    logged = _changes(kind, log).where(log.c[kind.time.name] < select(cut_at()).scalar_subquery())
    arguments: list = []  # none: every value (the view's call)
    if only:
        arguments = [cast(only.get(d, null()), _array_of(kind, d)) for d in kind.dims]
    reader = functions.Function(recent_function(kind), *arguments)
    recent = reader.table_valued(*(column(c.name, c.type) for c in kept.c))
    from_function = select(*(recent.c[c] for c in columns))
    return union_all(select(*(kept.c[c] for c in columns)), logged, from_function)


def view_sql(kind) -> list[str]:
    """CREATE the function that reads a tail kind's rows from the cut on, the view the kind
    reads (:func:`rows`, every value), and its rule: rows inserted into the view go to the
    kept table. One statement reads the cut and the rows on both sides of it in one
    snapshot (a STABLE function reads the calling statement's)."""
    kept, view = kind.table("kept"), kind.table("tail").name
    columns = ["bucket", *kind.dims, *kind.measures]
    grouped = by_slot(kind, cut_at(), None, where=_kept_values(kind)).order_by(None).subquery()
    recent = select(*(grouped.c[c.name] for c in kept.columns))
    new = ", ".join(f"NEW.{c}" for c in columns)
    # Its columns are named, not the kept table's row type: nothing of it depends on the
    # table, so what drops the tables (an earlier release's uninstall too) need not know it.
    returns = ", ".join(f"{c.name} {c.type.compile(dialect=postgresql.dialect())}" for c in kept.c)
    parameters = ", ".join(
        f"{_only(d)} {_array_of(kind, d).compile(dialect=postgresql.dialect())} DEFAULT NULL"
        for d in kind.dims
    )
    return [
        f"CREATE OR REPLACE FUNCTION {recent_function(kind)}({parameters}) "
        f"RETURNS TABLE ({returns}) LANGUAGE plpgsql STABLE {_RECENT_SETTINGS} AS "
        f"$body${_USE_COLUMN} BEGIN RETURN QUERY {_pg(recent)}; END$body$",
        f"CREATE OR REPLACE VIEW {view} AS {_pg(rows(kind))}",
        f"CREATE OR REPLACE RULE {view}_insert AS ON INSERT TO {view} "
        f"DO INSTEAD INSERT INTO {kept.name} ({', '.join(columns)}) VALUES ({new})",
    ]


@functools.cache
def _view_definition(name: str) -> tuple[tuple[str, ...], str]:
    """The statements creating the tail kind ``name``'s view and rule, and their digest;
    compiled once (every refresh checks them)."""
    statements = tuple(view_sql(next(kind for kind in TAILS if kind.name == name)))
    return statements, hashlib.sha256("\n".join(statements).encode()).hexdigest()[:32]


def _drop_view(connection, kind) -> None:
    """Drop the tail kind's view, then the function it calls, if there are any."""
    connection.execute(DDL(f"DROP VIEW IF EXISTS {kind.table('tail').name}"))
    # Whatever their parameters (an earlier release's had none).
    named = _recent_functions(kind)
    for statement in function_drops(connection, lambda name: name.in_(named)):
        connection.execute(DDL(statement))


def _keep_view_current(connection, kind) -> None:
    """Create the kind's function, view and rule again unless they are those of this
    release: a digest of their definition is kept as the view's comment, so that a refresh,
    which checks them every time, takes no lock on a view that readers are reading."""
    statements, digest = _view_definition(kind.name)
    view = kind.table("tail").name
    described = func.obj_description(func.to_regclass(view), "pg_class")
    if connection.execute(select(described)).scalar() == digest:
        return
    # Dropped first: a function's result columns cannot be replaced, only dropped.
    _drop_view(connection, kind)
    for statement in statements:
        connection.execute(DDL(statement))
    connection.execute(DDL(f"COMMENT ON VIEW {view} IS '{digest}'"))


def _slot_of(logged: Logged, row: str) -> str:
    """The slot index of a trigger's ``row`` (NEW, OLD or a transition table's)."""
    time: ColumnClause[datetime] = literal_column(f"{row}.{logged.time.name}")
    return _pg(slot_index(slot_start(time, SLOT_SECONDS)))


@functools.cache
def _bodies(schema: str, logged: Logged) -> dict[str, tuple[str, bool]]:
    """The functions of the source's triggers by name: (body, whether it sets the search
    path); compiled once per schema (every refresh checks them)."""
    target = f'"{schema}".{logged.log.name}'
    columns = logged.columns
    names = ", ".join(["sign", *columns])
    first = f"(SELECT start_slot FROM \"{schema}\".{state.name} WHERE name = '{STATE_NAME}')"

    def values(sign: int, row: str) -> str:
        return f"({sign}, " + ", ".join(f"{row}.{c}" for c in columns) + ")"

    # The insert function runs on every write of an aged row: it names nothing through the
    # search path (its table is qualified, its values need no operator), so it goes without
    # setting it on every call (see Triggers.keep_function_current).
    inserted = f"""
BEGIN
  INSERT INTO {target} ({names}) VALUES {values(1, "NEW")};
  RETURN NULL;
END
"""

    # A JSON column is compared as text: a host's may be json, which has no equality
    # (jsonb's text is canonical; a json value rewritten alike logs a -1 and a +1 alike).
    def compared(row: str, name: str) -> str:
        json = isinstance(logged.source.c[name].type, JSON)
        return f"{row}.{name}::text" if json else f"{row}.{name}"

    olds, news = (", ".join(compared(row, c) for c in columns) for row in ("OLD", "NEW"))
    kept = " ".join(f'DELETE FROM "{schema}".{kind.table("kept").name};' for kind in logged.kinds)
    copied = ", ".join(f"old_rows.{c}" for c in columns)
    unchanged = f"ROW({olds}) IS NOT DISTINCT FROM ROW({news})"
    if logged.cascaded is None:
        skipped = f"IF {unchanged} THEN RETURN NULL; END IF;"
    else:
        # Deleting a parent sets its rows' dim NULL, of every age: only those of the kept
        # slots are logged (the rolled ones follow the delete by themselves). Any other
        # update is logged when it changes one of the columns the tail reads.
        cascaded = f"greatest({_slot_of(logged, 'OLD')}, {_slot_of(logged, 'NEW')}) >= {first}"
        skipped = f"""IF OLD.{logged.cascaded} IS DISTINCT FROM NEW.{logged.cascaded} THEN
    IF NOT coalesce({cascaded}, true) THEN RETURN NULL; END IF;
  ELSIF {unchanged} THEN
    RETURN NULL;
  END IF;"""
    updated = f"""
BEGIN
  {skipped}
  INSERT INTO {target} ({names}) VALUES {values(-1, "OLD")}, {values(1, "NEW")};
  RETURN NULL;
END
"""
    per_statement = f"""
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM {target}; {kept}
  ELSE
    INSERT INTO {target} ({names}) SELECT -1, {copied} FROM old_rows
    WHERE NOT coalesce({_slot_of(logged, "old_rows")} < {first}, false);
  END IF;
  RETURN NULL;
END
"""
    insert_function, update_function, bulk_function = functions_of(logged)
    return {
        insert_function: (inserted, False),
        update_function: (updated, True),
        bulk_function: (per_statement, True),
    }


def _earlier_objects(connection) -> list[str]:
    """DROP statements for what an earlier release of this layout kept the tail with: its
    triggers on the sources and functions named like the tail's, and tables where the
    views go."""
    like = f"{PREFIX}tail%".replace("_", "\\_")
    drops = []
    catalog = table("pg_trigger", column("tgrelid"), column("tgname"))
    for named in NAMED:
        names = connection.execute(
            select(catalog.c.tgname).where(
                catalog.c.tgrelid == func.to_regclass(named.source),
                catalog.c.tgname.like(like, escape="\\"),
                catalog.c.tgname.not_in([named.trigger(op) for op in named.operations]),
            )
        ).scalars()
        drops += [f"DROP TRIGGER IF EXISTS {name} ON {named.source}" for name in names]
    procs = table("pg_proc", column("proname"), column("pronamespace"))
    here = procs.c.pronamespace == func.to_regnamespace(func.current_schema())
    current = [name for logged in LOGGED for name in functions_of(logged)]
    names = connection.execute(
        select(procs.c.proname).where(
            here,
            procs.c.proname.like(like, escape="\\"),
            procs.c.proname.not_in([*current, CUT_FUNCTION]),
        )
    ).scalars()
    drops += [f"DROP FUNCTION IF EXISTS {name}()" for name in names]
    classes = table("pg_class", column("oid"), column("relkind"))
    for kind in TAILS:
        name = kind.table("tail").name
        found = select(classes.c.relkind).where(classes.c.oid == func.to_regclass(name))
        if connection.execute(found).scalar() == "r":
            drops.append(f"DROP TABLE {name}")
    return drops


def install(engine, margin_seconds: int) -> bool:
    """Create the views, functions and triggers (PostgreSQL), unless they are in place with
    this margin, replacing what an earlier release kept the tail with; the next refresh
    seeds the kept tables. False (and a warning) elsewhere or when the database user may
    not create them: the tail is then read raw."""
    if engine.dialect.name != "postgresql":
        return False
    wanted = [triggers(logged, margin_seconds) for logged in LOGGED]
    try:
        with engine.begin() as connection:
            connection.execute(select(func.pg_advisory_xact_lock(_INSTALL_LOCK)))
            earlier = _earlier_objects(connection)
            for statement in earlier:
                connection.execute(DDL(statement))
            _keep_cut_function_current(connection)
            for kind in TAILS:
                _keep_view_current(connection, kind)
            replaced, in_place, schema = False, True, schema_of(connection)
            for logged, named in zip(LOGGED, wanted, strict=True):
                for name, (body, fixed) in _bodies(schema, logged).items():
                    current = named.keep_function_current(connection, body, name, fixed_path=fixed)
                    replaced = current or replaced
                if not connection.execute(select(named.current())).scalar():
                    in_place = False
                    for statement in named.drops() + named.creates_described():
                        connection.execute(DDL(statement))
            recorded = connection.execute(select(tail_cut.c.margin_seconds)).scalars().all()
            if earlier or replaced or not in_place or recorded != [margin_seconds]:
                # What changed while there were no triggers, or the functions kept other
                # tables (another release's), is not in the tables: seed them again.
                connection.execute(delete(state).where(state.c.name == STATE_NAME))
                connection.execute(delete(tail_cut))
                connection.execute(insert(tail_cut).values(margin_seconds=margin_seconds))
        return True
    except sa_exc.DBAPIError as exc:
        denied = getattr(exc.orig, "pgcode", None) == _INSUFFICIENT_PRIVILEGE
        log.warning(
            "the raw tail is read raw (its cost grows with the write rate): the triggers "
            "that keep it cannot be created (%s)%s",
            exc.orig,
            f"; grant the database user ownership of {' and '.join(SOURCES)} (or TRIGGER on "
            "them) to have it kept"
            if denied
            else "",
        )
        return False


def uninstall(engine) -> None:
    """Drop the triggers and views, if any (``OMNI_DASHBOARD_ROLLUPS_TAIL=raw``, and
    before the tables go)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.begin() as connection:
            for named in NAMED:
                for statement in named.drops():
                    connection.execute(DDL(statement))
            for kind in TAILS:
                _drop_view(connection, kind)
            connection.execute(DDL(f"DROP FUNCTION IF EXISTS {CUT_FUNCTION}()"))
            connection.execute(delete(state).where(state.c.name == STATE_NAME))
            connection.execute(delete(tail_cut))
    except sa_exc.DBAPIError as exc:
        log.warning("the tail triggers could not be dropped: %s", exc.orig)


def usable(connection):
    """A condition on the state table's rows: the tail's row only while its triggers are
    in place (a host migration that recreated omni_events or automation_logs drops them)."""
    if connection.dialect.name != "postgresql":
        return state.c.name != STATE_NAME
    return or_(state.c.name != STATE_NAME, in_place())


def _newest_mark():
    """A scalar subquery: the clock of the newest mark whose transaction id is older than
    every transaction still running in the statement's snapshot (NULL: none yet)."""
    xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
    running = cast(cast(xmin, Text), BigInteger)
    return select(func.max(tail_marks.c.clock)).where(tail_marks.c.xid < running).scalar_subquery()


def mark(engine) -> None:
    """Record the database's clock, then a transaction id handed out after it (PostgreSQL,
    while the triggers are in place): a transaction with a later id writes after that
    moment, so once none older runs, no write the triggers passed over is older than the
    moment less the margin. Two statements in a transaction without an id yet, so the
    clock is read first."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        clock = connection.execute(select(literal_column(_CLOCK))).scalar()
        connection.execute(built(("tail-mark",), _marked), {"clock": clock})


def _marked():
    """INSERT the mark of ``:clock`` and the transaction's id, while the triggers are in
    place (built once: every refresh runs it)."""
    xid = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    marked = select(bindparam("clock", type_=DateTime()), xid).where(in_place())
    return insert(tail_marks).from_select(["clock", "xid"], marked)


def _moved(seeded: bool):
    """One statement (one snapshot) that empties the logs into the kept tables and moves
    the cut: to the newest mark older than every running transaction, less the margin
    (never back). ``seeded``: from the sources' rows from the watermark's first instant
    (``:begin``) to the new cut (the logs' rows are in them); else each log's rows before
    the old cut, of slots from a day before the watermark (``:low``) on, and its source's
    rows between the old and the new cut, folded with the kept rows of their slots; the
    logs' rows from the old cut on are dropped (the sources' rows answer for them). Built
    once each way (:func:`_fold`): building it took 12 ms of CPU, a refresh every second
    under ingest."""
    low = bindparam("low", type_=BigInteger())
    begin = bindparam("begin", type_=DateTime())
    margin = tail_cut.c.margin_seconds * literal_column("interval '1 second'")
    old = begin if seeded else func.coalesce(tail_cut.c.cut, begin)
    moved = func.greatest(old, _newest_mark() - margin)
    cuts = select(old.label("old"), moved.label("new")).cte("cuts")
    old_cut, new_cut = select(cuts.c.old).scalar_subquery(), select(cuts.c.new).scalar_subquery()
    stored = update(tail_cut).values(cut=new_cut).returning(literal(1)).cte("stored")
    statements = [cuts, stored]
    for m, source in enumerate(LOGGED):
        logged = delete(source.log).returning(*source.log.c).cte(f"logged_{m}")
        statements.append(logged)
        if seeded:
            _seed_kinds(source, m, old_cut, new_cut, statements)
            continue
        time = source.time.name
        before = select(logged).where(logged.c[time] < old_cut).subquery()
        slot = slot_index(slot_start(before.c[time], SLOT_SECONDS))
        touched = select(slot.label("bucket")).distinct().cte(f"touched_{m}")
        # The source's rows between the cuts, read once for all its kinds (each summed
        # them from a scan of its own: five scans of the same rows), signed like the log's.
        young = _young(source, old_cut, new_cut).cte(f"young_{m}")
        when = slot_index(slot_start(young.c[time], SLOT_SECONDS))
        arrived = select(when.label("bucket")).distinct().cte(f"arrived_{m}")
        statements += [touched, young, arrived]
        for n, kind in enumerate(source.kinds):
            kept = kind.table("kept")
            # The slots that change (the others are folded already).
            changed = or_(
                kept.c.bucket.in_(select(touched.c.bucket)),
                kept.c.bucket.in_(select(arrived.c.bucket)),
            )
            deleted = delete(kept).where(kept.c.bucket >= low, changed)
            gone = deleted.returning(*kept.c).cte(f"gone_{m}_{n}")
            changes = _changes(kind, before).subquery()
            earlier = select(changes).where(changes.c.bucket >= low)
            rows = union_all(select(gone), earlier, _changes(kind, young)).subquery()
            statements += [
                gone,
                _summed(kind, rows, kept).returning(literal(1)).cte(f"kept_{m}_{n}"),
            ]
    return select(literal(1)).add_cte(*statements)


def _young(source: Logged, old_cut, new_cut):
    """SELECT the columns the log copies of the source's rows between the cuts, each +1."""
    time = source.source.c[source.time.name]
    columns = [source.source.c[c] for c in source.columns]
    between = and_(time >= old_cut, time < new_cut)
    return select(literal(1).label("sign"), *columns).where(between)


def _seed_kinds(source: Logged, m: int, old_cut, new_cut, statements: list) -> None:
    """Append to ``statements`` the CTEs that empty the source's kinds' kept tables and
    fill them with the source's rows between the cuts, by slot and dims."""
    for n, kind in enumerate(source.kinds):
        kept = kind.table("kept")
        recent = by_slot(kind, old_cut, new_cut).order_by(None).cte(f"recent_{m}_{n}")
        gone = delete(kept).returning(*kept.c).cte(f"gone_{m}_{n}")
        rows = select(recent).subquery()
        statements += [
            recent,
            gone,
            _summed(kind, rows, kept).returning(literal(1)).cte(f"kept_{m}_{n}"),
        ]


def _fold(connection, watermark: int, start: int | None) -> None:
    """Run :func:`_moved` at ``watermark``, seeding when ``start`` is None."""
    statement = built(("tail-fold", start is None), lambda: _moved(start is None))
    values = {"low": watermark - KEPT_BEFORE, "begin": slot_time(watermark)}
    connection.execute(statement, values)


def _usable():
    """SELECT whether the triggers are in place and the install recorded the margin."""
    recorded = select(func.count()).select_from(tail_cut).scalar_subquery() == 1
    return select(and_(in_place(), recorded))


def _stored():
    """SELECT the tail's first kept slot and the watermark it was last trimmed at."""
    return select(state.c.start_slot, state.c.watermark_slot).where(state.c.name == STATE_NAME)


def _used_marks():
    """DELETE the marks older than the newest one the cut can move to."""
    return delete(tail_marks).where(tail_marks.c.clock < _newest_mark())


def keep(connection, watermark: int) -> None:
    """Inside the refresh's transaction, caught up at ``watermark``: seed the kept tables,
    or fold the log into them and drop old slots; forget them when the triggers are gone
    (or the install did not record the margin)."""
    if connection.dialect.name != "postgresql":
        return
    named = state.c.name == STATE_NAME
    if not connection.execute(built(("tail-usable",), _usable)).scalar():
        connection.execute(delete(state).where(named))
        return
    stored = connection.execute(built(("tail-state",), _stored)).one_or_none()
    start, trimmed = stored or (None, None)
    # One statement, one snapshot: the log rows it deletes are the ones it keeps, and the
    # rows it reads from omni_events those its new cut leaves to the kept tables. Its cuts
    # are read in it, so the planner guesses a share of omni_events between them: at 10M
    # events that crossed jit_above_cost, and compiling took 250 ms of a 5 ms fold.
    without_jit(connection)
    _fold(connection, watermark, start)
    connection.execute(built(("tail-marks-used",), _used_marks))
    if start is None:
        values = {"name": STATE_NAME, "start_slot": watermark, "watermark_slot": watermark}
        connection.execute(insert(state).values(**values))
        return
    if trimmed == watermark:
        # Trimmed at this watermark already, and folds write no slot before it less
        # KEPT_BEFORE: a refresh every second would delete nothing in seven statements.
        return
    for kind in TAILS:
        kept = kind.table("kept")
        connection.execute(delete(kept).where(kept.c.bucket < watermark - KEPT_BEFORE))
    first = max(start, watermark - KEPT_BEFORE)
    connection.execute(
        update(state).where(named).values(start_slot=first, watermark_slot=watermark)
    )
