"""The plugin's DDL is a deploy step: `flask omni-dashboard install`, run by an operator;
start-up only checks; the live feed stops itself when the process exits."""

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect, text

from host_example.seed import SeedPlan
from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.rollups import dead_letter_counts, service
from omni_dashboard_plugin.rollups.kinds import metadata
from omni_dashboard_plugin.rollups.refresh import LOCK_KEY

from .conftest import API_KEY, NOW, build_app
from .data import seeded

pytestmark = pytest.mark.slow  # the flask command in processes of its own


@pytest.fixture
def fresh_url(own_pg_url):
    """A PostgreSQL database of its own holding Omni's tables and none of the plugin's."""
    build_app(own_pg_url, OMNI_DASHBOARD_ROLLUPS="off")  # the host's own tables
    return own_pg_url


def plugin_tables(url) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) & set(metadata.tables)
    finally:
        engine.dispose()


def flask_command(url, *args, mode="on"):
    """`flask omni-dashboard ...` for a host that leaves the plugin's tables to it, and its
    environment: (argv, env)."""
    app = "host_example.app:create_app({'OMNI_INSTALL_PLUGIN_TABLES': False})"
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": url,
        "OMNI_API_KEY": API_KEY,
        "OMNI_DASHBOARD_ROLLUPS": mode,
    }
    return [sys.executable, "-m", "flask", "--app", app, "omni-dashboard", *args], env


def sidecar_io() -> dict:
    return {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "text": True}


def flask(url, *args, mode="on"):
    """Run `flask omni-dashboard ...` (see :func:`flask_command`) to the end."""
    argv, env = flask_command(url, *args, mode=mode)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.postgres
def test_start_up_checks_and_the_operator_installs(fresh_url):
    # Creating the app makes no table of the plugin's, and with `on` it says what to run
    # first, then how many tables are missing (not every name).
    count = len(metadata.tables)
    with pytest.raises(ConfigError) as refused:
        build_app(fresh_url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_INSTALL_PLUGIN_TABLES=False)
    assert re.fullmatch(
        r"OMNI_DASHBOARD_ROLLUPS=on, but the rollup tables are not installed: run "
        r"`flask --app yourapp omni-dashboard install` "
        rf".*\({count} of {count} missing: (\w+, ){{3}}\.\.\.\)",
        str(refused.value),
    )
    assert plugin_tables(fresh_url) == set()

    refused = flask(fresh_url, "refresh")
    assert (
        refused.returncode != 0 and "flask --app yourapp omni-dashboard install" in refused.stderr
    )

    done = flask(fresh_url, "install")
    assert done.returncode == 0, done.stderr
    assert "installed" in done.stdout
    assert plugin_tables(fresh_url) == set(metadata.tables)
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert dead_letter_counts.installed(conn)
    engine.dispose()

    app = build_app(fresh_url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_INSTALL_PLUGIN_TABLES=False)
    assert app.extensions["omni_dashboard"].rollups.active
    refreshed = flask(fresh_url, "refresh")
    assert refreshed.returncode == 0 and "watermark" in refreshed.stdout, refreshed.stderr
    # As a sidecar: a refresh a second, until stopped.
    argv, env = flask_command(fresh_url, "refresh", "--every", "1")
    sidecar = subprocess.Popen(argv, env=env, **sidecar_io())
    try:
        lines = [sidecar.stdout.readline() for _ in range(3)]
        assert all(re.match(r"rolled \d+ chunks; watermark ", line) for line in lines), lines
        assert sidecar.poll() is None  # still running after three refreshes
    finally:
        sidecar.terminate()
        sidecar.wait(30)
    too_often = flask(fresh_url, "refresh", "--every", "0.1")
    assert too_often.returncode == 2 and "--every" in too_often.stderr

    gone = flask(fresh_url, "uninstall")
    assert gone.returncode == 0, gone.stderr
    assert plugin_tables(fresh_url) == set()


@pytest.mark.postgres
def test_auto_picks_up_an_install_without_a_restart(fresh_url, monkeypatch):
    monkeypatch.setattr(service, "REFRESH_INTERVAL_SECONDS", 0)
    app = build_app(fresh_url, OMNI_DASHBOARD_ROLLUPS="auto", OMNI_INSTALL_PLUGIN_TABLES=False)
    rollups = app.extensions["omni_dashboard"].rollups
    client = app.test_client()
    assert (
        client.get("/api/v2/event-ops/metrics", headers={"x-api-key": API_KEY}).status_code == 200
    )
    assert not rollups.active and plugin_tables(fresh_url) == set()

    assert flask(fresh_url, "install", mode="auto").returncode == 0
    assert (
        client.get("/api/v2/event-ops/metrics", headers={"x-api-key": API_KEY}).status_code == 200
    )
    assert rollups.active and rollups.keeps_dead_letters


@pytest.mark.postgres
def test_an_uninstall_under_a_running_app_turns_its_reads_raw(fresh_url):
    """The tables dropped while an ``auto`` app serves: its next reads are raw and exact
    (they equal an app with rollups off), not a 500, with no re-check interval to wait."""
    engine = create_engine(fresh_url)
    seeded(engine, SeedPlan(events=200, days=2, now=NOW))
    engine.dispose()
    on = build_app(fresh_url, OMNI_DASHBOARD_ROLLUPS="auto", OMNI_DASHBOARD_CACHE_SECONDS=0)
    off = build_app(fresh_url, OMNI_DASHBOARD_CACHE_SECONDS=0)
    rollups = on.extensions["omni_dashboard"].rollups
    rollups.refresh()
    paths = (
        "/api/v2/dashboard",
        "/api/v2/dashboard/metrics",
        "/api/v2/event-ops/metrics",
        "/api/v2/events/analytics?channel=discord&allTime=true",
    )

    def answers(app):
        found = []
        for path in paths:
            response = app.test_client().get(path, headers={"x-api-key": API_KEY})
            body = response.get_json() if response.is_json else response.get_data(as_text=True)
            if path == "/api/v2/dashboard" and response.status_code == 200:
                body.pop("system")
            if path.endswith("/dashboard/metrics"):  # the data families only
                body = [line for line in body.splitlines() if "omni_dashboard_" not in line]
            found.append((response.status_code, body))
        return found

    assert rollups.active and answers(on) == answers(off)
    assert flask(fresh_url, "uninstall", mode="auto").returncode == 0
    assert answers(on) == answers(off)
    assert all(status == 200 for status, _ in answers(on)) and not rollups.active


@pytest.mark.postgres
def test_reset_while_another_process_refreshes_says_so_in_one_line(fresh_url):
    assert flask(fresh_url, "install").returncode == 0
    engine = create_engine(fresh_url)
    with engine.connect() as holder:  # a refresh in another process holds the lock
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        refused = flask(fresh_url, "reset")
    engine.dispose()
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "Error: another process is refreshing the rollups; try again later (nothing was reset)"
    ]
    assert flask(fresh_url, "reset").returncode == 0


def test_install_refuses_where_rollups_are_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'omni.db'}"
    build_app(url)
    refused = flask(url, "install", mode="auto")  # auto is off on SQLite
    assert refused.returncode != 0
    assert "OMNI_DASHBOARD_ROLLUPS=auto on sqlite" in refused.stderr
    assert plugin_tables(url) == set()


STOPS_AT_EXIT = """
from omni_dashboard_plugin.live import feed
from tests.conftest import build_app

stop = feed.LiveFeed.stop
def reported(self):
    print("stopped", self._writer is not None, flush=True)
    stop(self)
feed.LiveFeed.stop = reported

app = build_app({url!r})
live = app.extensions["omni_dashboard"].live
live.writer()  # the hub and the SSE writer thread run
print("running", flush=True)
"""


def test_the_live_feed_stops_itself_when_the_process_exits(tmp_path):
    script = STOPS_AT_EXIT.format(url=f"sqlite:///{tmp_path / 'omni.db'}")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=os.getcwd()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["running", "stopped", "True"]
