"""VACUUM of the tables every refresh rewrites (PostgreSQL).

Each fold deletes the tail's logs and rewrites its kept rows, its cut and marks, the dead
letter counts and the state rows: at 2,000 events a second, thousands of dead rows a
second, in tables that every read scans. Autovacuum visits a table at most once a minute
(``autovacuum_naptime``), and a server may run without it, so the refresh vacuums them
itself after each fold: a few milliseconds while they stay small, where a minute of dead
rows made the log's scan cost 48 ms of a 65 ms dashboard statement.
"""

import logging

from sqlalchemy import exc as sa_exc

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
# SKIP_LOCKED: a table another session holds a conflicting lock on (a concurrent VACUUM,
# an uninstall dropping it) is left for the next fold rather than waited for.
STATEMENT = "VACUUM (SKIP_LOCKED) " + ", ".join(table.name for table in CHURNED)


def vacuum_churned(engine) -> None:
    """VACUUM :data:`CHURNED` outside any transaction (PostgreSQL; nothing elsewhere). A
    failure is logged, not raised: the fold it follows is committed, and the next one
    tries again."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(STATEMENT)
    except sa_exc.DBAPIError as exc:
        log.warning("the rollups' own tables could not be vacuumed: %s", exc.orig)
