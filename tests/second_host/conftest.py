"""Fixtures of the contract tests: fresh databases (SQLite; PostgreSQL through psycopg 3
when OMNI_TEST_DATABASE_URL is set), the hosts, and a seeded world per host and database."""

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .data import NOW, Dataset, dataset
from .hosts import HOSTS, Host, read

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROLLUPS_OFF = {"OMNI_DASHBOARD_ROLLUPS": "off"}
ROLLUPS_ON = {"OMNI_DASHBOARD_ROLLUPS": "on", "OMNI_DASHBOARD_ROLLUPS_REFRESH": "cron"}


def plain(url: str) -> str:
    """``url`` with the plain ``postgresql`` driver name: psycopg 3 under SQLAlchemy 2.1."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Databases:
    """Makes empty databases; the PostgreSQL ones are dropped when the session ends."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.admin = os.environ.get("OMNI_TEST_DATABASE_URL")
        self.made: list[str] = []

    def fresh(self, kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self.tmp.mktemp('team') / 'omni.db'}"
        if not self.admin:
            if IN_CI:
                pytest.fail("CI=true: OMNI_TEST_DATABASE_URL must point at PostgreSQL")
            pytest.skip("PostgreSQL tests need OMNI_TEST_DATABASE_URL")
        name = f"omni_second_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self._admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return make_url(plain(self.admin)).set(database=name).render_as_string(hide_password=False)

    def _admin(self):
        return create_engine(plain(self.admin), isolation_level="AUTOCOMMIT")

    def drop(self) -> None:
        """Drop them at once (each drop waits for a checkpoint, which they then share)."""
        if not self.made:
            return
        engine = self._admin()

        def drop(name):
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        with ThreadPoolExecutor(len(self.made)) as pool:
            list(pool.map(drop, self.made))
        engine.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    found = Databases(tmp_path_factory)
    yield found
    found.drop()


@pytest.fixture(scope="session", params=sorted(HOSTS))
def host(request) -> Host:
    """Each contract test runs against every host."""
    return HOSTS[request.param]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request) -> str:
    """... on SQLite and on PostgreSQL."""
    return request.param


@dataclass
class World:
    """A host's database, filled with ``data`` and its rollups refreshed, at :data:`NOW`."""

    host: Host
    url: str
    data: Dataset
    built: list = field(default_factory=list)

    def app(self, settings=ROLLUPS_OFF, **more):
        """The host on this database with the plugin's ``settings``."""
        return self._kept(self.host.build(self.url, lambda: NOW, {**settings, **more}))

    def bare(self):
        """The host with no plugin installed."""
        return self._kept(self.host.build(self.url, lambda: NOW, ROLLUPS_OFF, bare=True))

    def _kept(self, app):
        self.built.append(app)
        return app

    def dispose(self) -> None:
        """Give back the pooled connections of the apps built so far."""
        while self.built:
            self.built.pop().extensions["omni_dashboard"].engine.dispose()

    def get(self, app, path: str):
        """GET ``path`` with the host's credentials: (status, content type, body bytes); an
        event stream's body, which does not end, is not read."""
        return read(app.test_client(), path, self.host.headers)


@pytest.fixture(scope="session")
def world(host, database, databases) -> World:
    url = databases.fresh(database)
    installer = host.build(url, lambda: NOW, ROLLUPS_ON, migrate=True)
    data = dataset()
    dashboard = installer.extensions["omni_dashboard"]
    host.write(dashboard.engine, data)
    dashboard.rollups.refresh()
    dashboard.engine.dispose()
    return World(host, url, data)


@pytest.fixture(autouse=True)
def _connections_given_back(request):
    """A test's apps close their connections after it (one PostgreSQL server is shared)."""
    yield
    if "world" in request.fixturenames:
        request.getfixturevalue("world").dispose()
