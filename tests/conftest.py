"""Shared fixtures: databases (SQLite and PostgreSQL), apps with a fixed clock, NATS."""

import os
import shutil
import subprocess
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


# A test database's commits do not wait for the WAL flush (about 3 ms each on this machine,
# a few hundred per Hypothesis test): a commit is still atomic and visible to every other
# session at once; only a crash of the server could lose the last ones, which no test needs.
NO_COMMIT_FLUSH = 'ALTER DATABASE "{name}" SET synchronous_commit = off'


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
            conn.execute(text(NO_COMMIT_FLUSH.format(name=name)))
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
        conn.execute(text(NO_COMMIT_FLUSH.format(name=name)))
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


# Hypothesis example counts come from one of three profiles, never from a test:
# ``fast`` for the quick selection, ``full`` for a whole run, ``ci`` for a whole run that is
# repeatable (derandomised) and prints what it needs to reproduce a failure.
settings.register_profile("fast", max_examples=20, deadline=None)
settings.register_profile("full", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)


def examples(share: float) -> int:
    """A test's example count as a share of the loaded profile's: a test whose examples are
    expensive asks for a fraction of them, a cheap one for more."""
    return max(1, round(settings().max_examples * share))


def hypothesis_profile(markexpr: str) -> str:
    """OMNI_HYPOTHESIS_PROFILE when set; else ``ci`` under CI=true, ``fast`` when slow tests
    are deselected (``-m "not slow"``), and ``full`` otherwise."""
    chosen = os.environ.get("OMNI_HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    if IN_CI:
        return "ci"
    return "fast" if "not slow" in " ".join(markexpr.split()) else "full"


def pytest_configure(config):
    settings.load_profile(hypothesis_profile(config.getoption("markexpr") or ""))


# A test that starts a process (a server, a browser, a build, a command-line tool) is marked
# ``slow``, so that ``pytest -m "not slow"`` stays quick: while a test not marked slow runs
# (its fixtures included), starting one fails it with a message saying so.
class UnmarkedSlowTest(Exception):
    """A test not marked slow started a process."""


_running_fast = None  # the test running now when it is not marked slow
_started = {}  # node id of a fast test -> the first command it started
_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self, args, *rest, **kwargs):
    item = _running_fast
    if item is not None:
        _started.setdefault(item.nodeid, args)
        raise UnmarkedSlowTest(
            f"{item.nodeid} starts a process ({args!r}) but is not marked slow: "
            "add @pytest.mark.slow (or pytestmark = pytest.mark.slow for the module)"
        )
    _popen_init(self, args, *rest, **kwargs)


subprocess.Popen.__init__ = _guarded_popen_init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _running_fast
    _running_fast = None if item.get_closest_marker("slow") else item
    try:
        return (yield)
    finally:
        _running_fast = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail a fast test whose process start was swallowed (in a thread, by a retry loop)."""
    report = yield
    if report.failed:
        _started.pop(item.nodeid, None)  # already failing; the message says why
    elif report.when == "teardown" and item.nodeid in _started:
        command = _started.pop(item.nodeid)
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} started a process ({command!r}) but is not marked slow"
    return report


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
