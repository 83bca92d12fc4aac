"""VACUUM of the tables every refresh rewrites (PostgreSQL).

Each fold deletes the tail's logs and rewrites its kept rows, its cut and marks, the dead
letter counts and the state rows: at 2,000 events a second, thousands of dead rows a
second, in tables that every read scans. Autovacuum visits a table at most once a minute
(``autovacuum_naptime``), and a server may run without it, so the refresh vacuums them
itself after each fold: a few milliseconds while they stay small, where a minute of dead
rows made the log's scan cost 48 ms of a 65 ms dashboard statement.

It leaves their empty pages in place (``TRUNCATE false``) unless a table has grown past
:data:`TRUNCATE_FROM_BYTES`: cutting a table's empty end takes an ACCESS EXCLUSIVE lock,
which every read of the tail (and every writer the triggers log) waits behind. The log,
emptied by every fold, had its last page cut on nearly every refresh, and the slowest
requests under ingest were those beside a refresh. A table past the size (a burst of
changes to aged events: a backfill, a large delete) is cut back as before, so that reads
do not scan its empty pages for good.

The install sets the same on the tables themselves (``vacuum_truncate = false``, see
:func:`keep_pages`), so that a host's autovacuum does not cut them either; the refresh's
``TRUNCATE true`` of a grown table overrides the option.
"""

import logging

from sqlalchemy import bindparam, cast, column, func, select, table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from ..sql.built import built
from .dead_letter_counts import counts
from .kinds import LOGGED, TAILS, state, tail_cut, tail_marks

log = logging.getLogger(__name__)

CHURNED = (
    *(logged.log for logged in LOGGED),
    tail_cut,
    tail_marks,
    *(kind.table("kept") for kind in TAILS),
    counts,
    state,
)
TRUNCATE_FROM_BYTES = 1 << 20  # 128 pages; a fold at 2,000 events/s leaves the log 1 or 2
KEEP_PAGES = "vacuum_truncate=false"  # as pg_class.reloptions spells it
TEXTS = ARRAY(Text)
NAMES = [table.name for table in CHURNED]


def _named():
    """Each name of ``:names``, a column of its own (one row per table asked about)."""
    return func.unnest(bindparam("names", type_=TEXTS)).column_valued("name")


def _large():
    """SELECT the names of ``:names`` whose table has more than ``:bytes`` bytes."""
    name = _named()
    size = func.pg_relation_size(func.to_regclass(name))
    return select(name).where(size > bindparam("bytes"))


def _truncating():
    """SELECT the names of ``:names`` whose table lacks the option :data:`KEEP_PAGES`."""
    name = _named()
    classes = table("pg_class", column("oid"), column("reloptions", TEXTS))
    found = select(classes.c.reloptions).where(classes.c.oid == func.to_regclass(name))
    options = func.coalesce(found.scalar_subquery(), cast([], TEXTS))
    return select(name).where(~options.contains(cast([KEEP_PAGES], TEXTS))).order_by(name)


def _statement(tables, truncate: bool) -> str:
    """VACUUM ``tables``, cutting their empty end or not (said either way: the tables'
    own option says not to). SKIP_LOCKED: a table another session holds a conflicting
    lock on (a concurrent VACUUM, an uninstall dropping it) is left for the next fold
    rather than waited for."""
    return f"VACUUM (SKIP_LOCKED, TRUNCATE {str(truncate).lower()}) " + ", ".join(
        table.name for table in tables
    )


def keep_pages(connection) -> list[str]:
    """Set ``vacuum_truncate = false`` on the tables of :data:`CHURNED` that lack it (the
    install; PostgreSQL only), and return the statements run. Only those: changing a
    table's options makes every session plan its statements on it again."""
    if connection.dialect.name != "postgresql":
        return []
    lacking = connection.execute(built(("churned-truncating",), _truncating), {"names": NAMES})
    statements = [f"ALTER TABLE {name} SET ({KEEP_PAGES})" for name in lacking.scalars()]
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements


def vacuum_churned(engine) -> None:
    """VACUUM :data:`CHURNED` outside any transaction (PostgreSQL; nothing elsewhere). A
    failure is logged, not raised: the fold it follows is committed, and the next one
    tries again."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            found = connection.execute(
                built(("churned-large",), _large), {"names": NAMES, "bytes": TRUNCATE_FROM_BYTES}
            )
            large = set(found.scalars())
            small = [table for table in CHURNED if table.name not in large]
            grown = [table for table in CHURNED if table.name in large]
            for tables, truncate in ((small, False), (grown, True)):
                if tables:
                    connection.exec_driver_sql(_statement(tables, truncate))
    except sa_exc.DBAPIError as exc:
        log.warning("the rollups' own tables could not be vacuumed: %s", exc.orig)
