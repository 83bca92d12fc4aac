"""A read-only database (a PostgreSQL hot standby): whether the plugin may write there, and
how far the data it reads is behind the primary's."""

from sqlalchemy import Boolean, Float, func, or_, select

from .built import built


class ReadOnlyDatabase(RuntimeError):
    """The database takes no writes (a hot standby): install, refresh and reset the rollups
    against the primary."""


def read_only(connection) -> bool:
    """Whether a write would fail: PostgreSQL in recovery (a hot standby) or with read-only
    transactions (``default_transaction_read_only``). SQLite: never."""
    if connection.dialect.name != "postgresql":
        return False
    in_recovery = func.pg_is_in_recovery(type_=Boolean)
    read_only_transactions = func.current_setting("transaction_read_only") == "on"
    return bool(connection.execute(select(or_(in_recovery, read_only_transactions))).scalar())


def _replay_statement():
    seconds = func.extract("epoch", func.clock_timestamp() - func.pg_last_xact_replay_timestamp())
    return select(
        func.pg_is_in_recovery(type_=Boolean),
        func.pg_last_wal_receive_lsn() == func.pg_last_wal_replay_lsn(),
        seconds.cast(Float),
    )


def replay_lag(connection) -> float | None:
    """Seconds the data of a hot standby is behind its primary: 0 when it has replayed all
    the WAL it received, else the time since the last transaction it replayed committed on
    the primary (NaN before it replayed any). ``None`` on a primary, and on SQLite.

    A standby cut off from its primary receives nothing and so reports 0: the primary's
    ``pg_stat_replication`` (or the rollup watermark's lag) shows that case.
    """
    if connection.dialect.name != "postgresql":
        return None
    statement = built(("replay lag",), _replay_statement)
    recovering, caught_up, behind = connection.execute(statement).one()
    if not recovering:
        return None
    if caught_up:
        return 0.0
    return float("nan") if behind is None else max(0.0, behind)
