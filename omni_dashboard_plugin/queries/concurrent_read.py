"""Run an independent read on a second connection while a response's own statements run.

On PostgreSQL, a read that depends on nothing else of the response (the dead-letter
counts, say) can run on another pooled connection in a worker thread, so that the
database counts while the response's other statements and its Python work go on. When
the response reads one snapshot (REPEATABLE READ), the second connection imports it
(``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``), so the numbers are those the
response's own connection would read.

The read runs on the response's own connection instead, when it is collected, whenever
it cannot run alongside: SQLite, a pool other than SQLAlchemy's QueuePool or with no
connection to spare within its size (it never waits for one), a hot standby (not tried
there), a response inside a savepoint, or any error on the second connection.
"""

import logging
import re
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from ..sql.snapshot import TIMEOUT_OPTION, limit_statements, reads_one_snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f-]+$")
# Engine -> whether its server exports snapshots (asked once).
_EXPORTS: "weakref.WeakKeyDictionary[Engine, bool]" = weakref.WeakKeyDictionary()
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    """The process's worker threads, made on first use (after a server's fork)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="omni-dashboard")
        return _executor


def _has_spare_connection(engine: Engine) -> bool:
    """Whether the pool has a connection idle, or may open one within its size."""
    pool = engine.pool
    return isinstance(pool, QueuePool) and (pool.checkedin() > 0 or pool.checkedout() < pool.size())


def _can_export(connection: Connection) -> bool:
    """Whether to export the connection's snapshot: not on a standby (asked once per
    engine; a refused export would abort the response's transaction)."""
    with _lock:
        known = _EXPORTS.get(connection.engine)
    if known is None:
        known = not connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar()
        if not known:
            log.info("reads alongside the response off: the server is a standby")
        with _lock:
            _EXPORTS[connection.engine] = known
    return known


class ConcurrentRead(Generic[T]):
    """``read(connection)`` started now and collected with :meth:`result`.

    ``inline`` reads it on the response's connection when collected instead (a read too
    cheap to be worth a second connection).

    Collect it while the response's connection is still open: the imported snapshot lives
    as long as the transaction that exported it.
    """

    def __init__(
        self, connection: Connection, read: Callable[[Connection], T], *, inline: bool = False
    ):
        self._connection = connection
        self._read = read
        self._lock = threading.Lock()
        self._taken = False
        self._future: Future | None = None
        engine = connection.engine
        if inline or engine.dialect.name != "postgresql" or not _has_spare_connection(engine):
            return
        snapshot = None
        if reads_one_snapshot(connection):
            if connection.in_nested_transaction() or not _can_export(connection):
                return
            snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            if not _SNAPSHOT_ID.match(snapshot or ""):
                return
        options = dict(connection.get_execution_options())
        options.pop("isolation_level", None)
        self._future = _worker().submit(self._on_second_connection, engine, snapshot, options)

    def _take(self) -> bool:
        """Claim the read for whoever asks first: the worker or the collector."""
        with self._lock:
            taken, self._taken = self._taken, True
            return not taken

    def _on_second_connection(self, engine: Engine, snapshot: str | None, options: dict):
        if self._taken:  # collected before this thread began: no connection for nothing
            return None
        with engine.connect() as second:
            if not self._take():
                return None  # collected meanwhile: the response read it itself
            if snapshot is not None:
                options["isolation_level"] = "REPEATABLE READ"
            second.execution_options(**options)
            try:
                if snapshot is not None:
                    second.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                limit_statements(second, options.get(TIMEOUT_OPTION, 0))
                return self._read(second)
            finally:
                second.rollback()

    def result(self) -> T:
        """The read's result: from the second connection if it got there first, else read
        now on the response's connection."""
        if self._future is None or self._take():
            return self._read(self._connection)
        try:
            return self._future.result()
        except Exception as error:
            log.warning("read alongside the response failed, reading it inline: %s", error)
            return self._read(self._connection)
