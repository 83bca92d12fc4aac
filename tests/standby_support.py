"""A real PostgreSQL primary and a streaming hot standby of it, made in a temporary
directory on free loopback ports (initdb, pg_basebackup), run as the postgres user."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .conftest import IN_CI
from .live_support import free_port
from .waiting import wait_until


def _server_programs() -> Path:
    """Where initdb and pg_basebackup are: OMNI_TEST_PG_BIN, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin."""
    if os.environ.get("OMNI_TEST_PG_BIN"):
        return Path(os.environ["OMNI_TEST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _server_programs()
DATABASE = "omni"


def as_postgres(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the postgres user (the tests run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], check=check, capture_output=True)


def pg_binaries() -> Path:
    """The PostgreSQL server programs; skipped (failed under CI=true) without them."""
    if not (PG_BIN / "initdb").exists() or (os.geteuid() == 0 and not shutil.which("runuser")):
        reason = f"PostgreSQL server programs (initdb, pg_basebackup) are not in {PG_BIN}"
        pytest.fail(f"CI=true: {reason}") if IN_CI else pytest.skip(reason)
    return PG_BIN


class Server:
    """One PostgreSQL server of the pair: its data directory, port and log."""

    def __init__(self, root: Path, name: str):
        self.data = root / name
        self.port = free_port()
        self.log = root / f"{name}.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self, *settings: str) -> None:
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c unix_socket_directories={self.data}", "-c fsync=off"]
        options += [f"-c {setting}" for setting in settings]
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-o", " ".join(options), "-w"),
            "start",
        )

    def stop(self) -> None:
        pg_ctl = str(PG_BIN / "pg_ctl")
        as_postgres(pg_ctl, "-D", str(self.data), "-m", "immediate", "stop", check=False)


class StandbyPair:
    """A primary and a hot standby streaming from it; ``standby.log`` records every
    statement the standby was asked to run that would modify data (``log_statement=mod``)
    and every error."""

    def __init__(self):
        pg_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="omni-standby-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.primary = Server(self.root, "primary")
        self.standby = Server(self.root, "standby")

    def start(self) -> "StandbyPair":
        as_postgres(
            str(PG_BIN / "initdb"),
            *("-D", str(self.primary.data), "-U", "postgres", "-A", "trust", "--no-sync"),
        )
        self.primary.start("wal_level=replica", "max_wal_senders=4")
        admin = create_engine(
            f"postgresql+psycopg2://postgres@127.0.0.1:{self.primary.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {DATABASE}"))
        admin.dispose()
        as_postgres(
            str(PG_BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
            *("-D", str(self.standby.data), "-R", "-X", "stream", "--no-sync", "-c", "fast"),
        )
        self.standby.start("hot_standby=on", "log_statement=mod", "hot_standby_feedback=on")
        return self

    def stop(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def engine(self, server: Server):
        return create_engine(server.url.replace("postgresql://", "postgresql+psycopg2://"))

    def primary_lsn(self) -> str:
        engine = self.engine(self.primary)
        try:
            with engine.connect() as connection:
                return connection.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
        finally:
            engine.dispose()

    def wait_for_replay(self) -> None:
        """Wait until the standby has replayed everything the primary wrote so far."""
        self._wait_for("pg_last_wal_replay_lsn()", self.primary_lsn())

    def wait_for_receipt(self) -> None:
        """Wait until the standby has received (not necessarily replayed) it all."""
        self._wait_for("pg_last_wal_receive_lsn()", self.primary_lsn())

    def _wait_for(self, position: str, lsn: str) -> None:
        engine = self.engine(self.standby)

        def reached() -> bool:
            with engine.connect() as connection:
                return connection.execute(
                    text(f"SELECT {position} >= CAST(:lsn AS pg_lsn)"), {"lsn": lsn}
                ).scalar()

        try:
            wait_until(reached, f"the standby's {position} to reach {lsn}")
        finally:
            engine.dispose()

    def on_standby(self, statement: str) -> None:
        """Run ``statement`` on the standby as its superuser (pausing replay, say)."""
        engine = self.engine(self.standby)
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def standby_complaints(self) -> list[str]:
        """Lines of the standby's log about a statement that modifies data, or an error."""
        lines = self.standby.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "statement: " in line or "ERROR:" in line]
