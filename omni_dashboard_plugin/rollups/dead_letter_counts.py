"""Dead letters per status, kept by triggers on ``dead_letter_events`` while rollups are on.

A dead letter changes status at any age, so its counts cannot be rolled up by time slot;
counting them reads every row, which grows with the table. Instead, triggers add a row
``(status, +n)`` or ``(status, -n)`` to a counts table in the same transaction as every
insert, status change and delete (a TRUNCATE empties it): any snapshot sees exactly the
counts of the dead letters it sees. The triggers are created with the current counts in
one transaction that holds off writers, so the two never disagree; each refresh folds
the rows into one per status.

A read checks that the triggers are still there (a host migration that recreated the
table drops them) and is told ``None`` when they are not; the caller then counts raw.
"""

import logging

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    table,
    union_all,
)
from sqlalchemy import exc as sa_exc

from ..sql.built import built
from ..sql.tables import dead_letter_events
from .kinds import PREFIX, metadata
from .locks import DEAD_LETTER_INSTALL as _INSTALL_LOCK
from .triggers import Triggers, schema_of

log = logging.getLogger(__name__)

SOURCE = dead_letter_events.name
counts = Table(
    f"{PREFIX}dead_letter_counts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("status", String(20)),
    Column("n", BigInteger, nullable=False),
)
PG_TRIGGERS = Triggers(f"{PREFIX}dead_letter_counts_keep", SOURCE, f"{PREFIX}dead_letter_counts")
SQLITE_TRIGGERS = {
    "insert": ("INSERT", "", ["(NEW.status, 1)"]),
    "update": (
        "UPDATE OF status",
        "WHEN OLD.status IS NOT NEW.status",
        [
            "(OLD.status, -1)",
            "(NEW.status, 1)",
        ],
    ),
    "delete": ("DELETE", "", ["(OLD.status, -1)"]),
}

# The trigger function's body; {counts} is the schema-qualified counts table.
_PG_BODY = """
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM {counts};
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO {counts} (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO {counts} (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
  ELSE
    INSERT INTO {counts} (status, n)
      SELECT status, sum(change) FROM (
        SELECT status, 1 AS change FROM new_rows
        UNION ALL SELECT status, -1 FROM old_rows) AS changes
      GROUP BY status HAVING sum(change) <> 0;
  END IF;
  RETURN NULL;
END
"""
# Installers of several processes take turns (function and triggers are replaced whole).


def _drops(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return PG_TRIGGERS.drops()
    return [f"DROP TRIGGER IF EXISTS {PG_TRIGGERS.trigger(op)}" for op in SQLITE_TRIGGERS]


def _statements(dialect: str) -> list[str]:
    """The DDL that (re)creates the triggers, after any earlier ones are dropped."""
    if dialect == "postgresql":
        return PG_TRIGGERS.drops() + PG_TRIGGERS.creates()
    statements = _drops(dialect)
    for op, (event, when, rows) in SQLITE_TRIGGERS.items():
        inserts = " ".join(f"INSERT INTO {counts.name} (status, n) VALUES {row};" for row in rows)
        statements.append(
            f"CREATE TRIGGER {PG_TRIGGERS.trigger(op)} AFTER {event} ON {SOURCE} {when} "
            f"BEGIN {inserts} END"
        )
    return statements


def _in_place(dialect: str):
    """A condition: whether every trigger exists (and, on PostgreSQL, is enabled)."""
    if dialect == "postgresql":
        return PG_TRIGGERS.in_place()
    catalog = table("sqlite_master", column("type"), column("name"), column("tbl_name"))
    names = [PG_TRIGGERS.trigger(op) for op in SQLITE_TRIGGERS]
    found = select(func.count()).where(
        catalog.c.type == "trigger", catalog.c.tbl_name == SOURCE, catalog.c.name.in_(names)
    )
    return found.scalar_subquery() == len(names)


def installed(connection) -> bool:
    """Whether every trigger is in place (and enabled)."""
    return bool(connection.execute(select(_in_place(connection.dialect.name))).scalar())


def install(engine) -> bool:
    """Create the triggers with the current counts, unless they are in place; False (and
    a warning) when the database user may not create them (counts are then read raw)."""
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return False
    try:
        with engine.begin() as connection:
            if dialect == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_INSTALL_LOCK)))
                body = _PG_BODY.format(counts=f'"{schema_of(connection)}".{counts.name}')
                PG_TRIGGERS.keep_function_current(connection, body)
            if installed(connection):
                return True
            _hold_writers(connection)
            for statement in _statements(dialect):
                connection.execute(DDL(statement))
            _count_again(connection)
        return True
    except sa_exc.DBAPIError as exc:
        log.warning(
            "dead letters are counted raw (their cost grows with the table): the triggers "
            "that keep their counts cannot be created (%s); grant the database user "
            "ownership of dead_letter_events (or TRIGGER on it) to have them kept",
            exc.orig,
        )
        return False


def recount(engine) -> None:
    """Count the dead letters again, for writes that bypassed the triggers (a bulk load
    with ``session_replication_role = replica``, a restore of ``dead_letter_events``)."""
    with engine.begin() as connection:
        _hold_writers(connection)
        _count_again(connection)


def _hold_writers(connection) -> None:
    """On PostgreSQL, writers wait until the counts are in again, and so does a refresh
    folding them (or this waits for it to finish)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE {SOURCE} IN SHARE ROW EXCLUSIVE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {counts.name} IN EXCLUSIVE MODE")


def _count_again(connection) -> None:
    connection.execute(delete(counts))
    status = dead_letter_events.c.status
    connection.execute(
        insert(counts).from_select(["status", "n"], select(status, func.count()).group_by(status))
    )


def uninstall(engine) -> None:
    """Drop the triggers, if any (``OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS=raw``)."""
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return
    try:
        with engine.begin() as connection:
            for statement in _drops(dialect):
                connection.execute(DDL(statement))
    except sa_exc.DBAPIError as exc:
        log.warning("the dead-letter triggers could not be dropped: %s", exc.orig)


def read(connection) -> dict[str, int] | None:
    """Dead letters per status (statuses with none left out), or ``None`` when the
    triggers are not in place. One statement."""
    dialect = connection.dialect.name

    def build():
        marker = select(
            literal(True).label("marker"), literal(None, String), literal(0, BigInteger)
        )
        kept = select(literal(False), counts.c.status, func.sum(counts.c.n)).group_by(
            counts.c.status
        )
        return union_all(marker.where(_in_place(dialect)), kept)

    rows = connection.execute(built(("dead letter counts", dialect), build)).all()
    if not any(is_marker for is_marker, _, _ in rows):
        return None
    return {status: int(n) for is_marker, status, n in rows if not is_marker and n}


def compact(connection) -> None:
    """Fold the counts into one row per status, inside the caller's transaction (the
    refresh's: on SQLite it holds the write lock, so no trigger adds a row meanwhile)."""
    if connection.dialect.name == "postgresql":
        # One statement, one snapshot: the rows it deletes are the rows it sums.
        gone = delete(counts).returning(counts.c.status, counts.c.n).cte("gone")
        folded = select(gone.c.status, func.sum(gone.c.n)).group_by(gone.c.status)
        connection.execute(
            insert(counts)
            .from_select(["status", "n"], folded.having(func.sum(gone.c.n) != 0))
            .add_cte(gone)
        )
        return
    folded = connection.execute(
        select(counts.c.status, func.sum(counts.c.n)).group_by(counts.c.status)
    ).all()
    connection.execute(delete(counts))
    rows = [{"status": status, "n": n} for status, n in folded if n]
    if rows:
        connection.execute(insert(counts), rows)
