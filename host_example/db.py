"""The host's database: URL resolution, engine, and table creation."""

import logging
import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from omni_dashboard_plugin.sql.deadline import guard_engine

from .tables import metadata

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2: the suite then runs the plugin on both drivers
    the ``postgres`` extra installs (the second host of ``tests/second_host`` keeps its plain
    ``postgresql://`` URL, which SQLAlchemy 2.1 maps to psycopg 3). ``postgres://`` (Heroku
    style) is accepted too.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def default_url(instance_path: str) -> str:
    """An SQLite file in the app's instance folder."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{os.path.join(instance_path, 'omni.db')}"


def make_engine(url: str, timeout_ms: int = 5000, statement_timeout_ms: int = 30000):
    """An engine for ``url``; SQLite gets a busy timeout and enforced foreign keys.

    PostgreSQL gets bounds for a database that stops answering, so that a request fails
    within ``timeout_ms``: the plugin's client-side deadline on every call and connection
    attempt (``guard_engine``: it holds when the peer acknowledges and never answers),
    ``tcp_user_timeout`` and TCP keepalives behind it (a link that drops packets), a pool
    that gives up waiting for a connection after ``timeout_ms``, and a server-side
    ``statement_timeout``.
    """
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # Read-only requests see one snapshot, so the numbers of one response agree.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=timeout_ms / 1000,
        isolation_level="REPEATABLE READ",
        connect_args={
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": timeout_ms,
            "options": f"-c statement_timeout={int(statement_timeout_ms)}",  # 0: no limit
        },
    )
    guard_engine(engine, timeout_ms)
    return engine


def create_tables(engine) -> bool:
    """Create Omni's tables where missing; False (and a warning) when the database is down."""
    try:
        metadata.create_all(engine)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        log.warning("database unreachable at start-up, tables not checked: %s", exc.orig)
        return False
    return True
