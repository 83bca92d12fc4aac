"""One consistent read snapshot for everything a response computes."""

from contextlib import contextmanager

TIMEOUT_OPTION = "omni_statement_timeout_ms"
# The setting that :func:`without_parallel_workers` turns off (``rollups.opening`` too).
PARALLEL_WORKERS = "max_parallel_workers_per_gather"


def limit_statements(connection, milliseconds: int) -> None:
    """Cancel any statement of the current PostgreSQL transaction that runs longer than
    ``milliseconds`` (0: no limit); the error becomes the host's 503."""
    if milliseconds and connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(milliseconds)}")


def without_parallel_workers(connection) -> None:
    """No parallel workers for the current PostgreSQL transaction: rollup reads touch few
    rows, and starting workers (about 5 ms) costs more than they read."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL {PARALLEL_WORKERS} = 0")


def without_jit(connection) -> None:
    """No JIT compilation for the current PostgreSQL transaction: for a statement whose
    estimate cannot know its bounds (read in the statement itself), the planner may cross
    ``jit_above_cost`` for rows it will not read, and compiling costs more than running."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL jit = off")


def unlimited(connection) -> None:
    """Lift any statement timeout for the current PostgreSQL transaction (the rollups'
    refresh: a day of a large table may take longer than a request may)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


@contextmanager
def snapshot(engine, statement_timeout_ms: int = 0):
    """A connection whose statements all read one snapshot of the database, each within
    ``statement_timeout_ms`` on PostgreSQL (a read alongside it inherits the limit).

    PostgreSQL: a REPEATABLE READ transaction. SQLite: an explicit BEGIN, so that the
    reads share one transaction (the driver would otherwise run each on its own).
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", **{TIMEOUT_OPTION: statement_timeout_ms}
            )
            limit_statements(connection, statement_timeout_ms)
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


def reads_one_snapshot(connection) -> bool:
    """Whether every statement on ``connection`` sees one snapshot of the database
    (PostgreSQL at REPEATABLE READ or SERIALIZABLE)."""
    if connection.dialect.name != "postgresql":
        return False
    # The connection's own option, else the engine's (create_engine(isolation_level=...)).
    level = connection.get_execution_options().get("isolation_level")
    return (level or connection.default_isolation_level) in ("REPEATABLE READ", "SERIALIZABLE")
