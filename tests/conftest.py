"""Shared fixtures: databases (SQLite and PostgreSQL), apps with a fixed clock, NATS."""

import os
import shutil
import sys
import uuid
from datetime import datetime

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from host_example import create_app
from host_example.db import normalize_url

API_KEY = "test-key"
NOW = datetime(2026, 3, 10, 12, 0, 0)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = os.environ.get("OMNI_TEST_DATABASE_URL")
    if not admin:
        if IN_CI:
            pytest.fail("CI=true: OMNI_TEST_DATABASE_URL must point at PostgreSQL")
        pytest.skip("PostgreSQL tests need OMNI_TEST_DATABASE_URL")
    admin = normalize_url(admin)
    name = f"omni_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"CI=true and PostgreSQL is unreachable at {admin}: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()


@pytest.fixture
def own_pg_url(pg_url):
    """An empty PostgreSQL database for one test (one that bypasses the plugin's triggers,
    say, which the shared one must not see), dropped after it."""
    name = f"omni_own_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    """Each database-backed test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'omni.db'}"
    return request.getfixturevalue("pg_url")


def build_app(db_url, **config):
    """The example host on ``db_url`` with a fixed clock and a known key."""
    settings = {
        "TESTING": True,
        "OMNI_DATABASE_URL": db_url,
        "OMNI_API_KEY": API_KEY,
        "OMNI_CLOCK": lambda: NOW,
        # Tests reseed one database over and over; rollup tests switch them on.
        "OMNI_DASHBOARD_ROLLUPS": "off",
    }
    settings.update(config)
    return create_app(settings)


def get_json(client, url, **kwargs):
    """GET with the API key; returns (status, json)."""
    response = client.get(url, headers={"x-api-key": API_KEY}, **kwargs)
    return response.status_code, response.get_json()


class Clock:
    """A settable clock for apps whose ``now`` a test moves."""

    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


@pytest.fixture
def nats_server(tmp_path):
    """A fresh nats-server (JetStream on) for one test; stopped afterwards."""
    from .live_support import NatsServer

    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory):
    """A nats-server (JetStream on) shared by one module's tests."""
    from .live_support import NatsServer

    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter):
    """How many requests the fuzz run sent, by status code (when it ran)."""
    fuzz = sys.modules.get(f"{__package__}.test_fuzz")
    sent = getattr(fuzz, "SENT", None)
    if sent:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(sent.items()))
        terminalreporter.write_line(f"schemathesis sent {sum(sent.values())} requests ({codes})")
    runner = sys.modules.get(f"{__package__}.test_schemathesis_cli")
    for database, count in sorted(getattr(runner, "GENERATED", {}).items()):
        terminalreporter.write_line(f"schemathesis run on {database}: {count} cases, 0 failures")


# Headless Chromium (Debian's) driven by Playwright: skipped without it, failed under CI.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A Chromium browser for the module's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true: playwright is not installed")
        pytest.skip("playwright is not installed")
    if not CHROMIUM:
        if IN_CI:
            pytest.fail("CI=true: chromium is not installed")
        pytest.skip("chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()
