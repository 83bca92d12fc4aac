"""SQLite: compile a refresh's statements before a chunk holds the write lock.

SQLAlchemy compiles a statement the first time an engine runs it. A chunk's hundred
statements took longer to compile than to run, inside the first chunks' transactions,
which hold SQLite's only write lock. A rehearsal runs them first on a query-only
connection: SQLite refuses each write at its first step, after SQLAlchemy has compiled and
cached the statement, so nothing is locked or written.
"""

import weakref

from sqlalchemy import exc as sa_exc

# The engines whose statements are compiled (SQLAlchemy caches them per engine).
_REHEARSED: "weakref.WeakSet" = weakref.WeakSet()


class _QueryOnly:
    """A connection whose refused writes are ignored (their statements are compiled)."""

    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def execute(self, statement, parameters=None):
        try:
            return self._connection.execute(statement, parameters)
        except sa_exc.OperationalError as exc:
            if "readonly" not in str(exc.orig):
                raise
            return None


def rehearse(engine, steps) -> None:
    """Run ``steps(connection)`` once per SQLite engine on a query-only connection."""
    if engine.dialect.name != "sqlite" or engine in _REHEARSED:
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA query_only = 1")
        try:
            steps(_QueryOnly(connection))
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA query_only = 0")
    _REHEARSED.add(engine)
