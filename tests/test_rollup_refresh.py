"""Refresh: killed midway, run concurrently, run by the request path; modes and config."""

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import make_url

from omni_dashboard_plugin.config import ConfigError, RollupSettings
from omni_dashboard_plugin.grid import slot_of, slot_time
from omni_dashboard_plugin.rollups.kinds import INSTANCE_SLOTS, KINDS
from omni_dashboard_plugin.rollups.state import first_whole_slot

from . import rollup_support as rs
from .conftest import API_KEY, NOW, build_app
from .waiting import wait_until

SPEC = {
    "instance": 1,
    "direction": "inbound",
    "status": "completed",
    "stage": "agent",
    "processing": 120,
    "agent": 40,
}
WINDOW = (NOW - timedelta(days=3), NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


# Events of SPEC (processing times varied), logs and payloads at regular steps.
history = functools.partial(rs.regular_history, spec=SPEC)


def rolled_rows(pair) -> int:
    with pair.engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(kind.table(level))).scalar_one()
            for kind in KINDS
            for level in ("slot", "hour", "day")
        )


KILLER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy.engine import Connection
    from omni_dashboard_plugin.rollups import refresh as module
    from tests.rollup_support import Pair
    from tests.conftest import NOW

    pair = Pair.attach(sys.argv[1])
    real = module._roll_slots
    calls = []

    def roll_then_hang(connection, low, high):
        real(connection, low, high)  # the chunk's rows are written, not committed
        if not isinstance(connection, Connection):  # SQLite's rehearsal (nothing written)
            return
        calls.append(low)
        if len(calls) == 3:
            print("MIDWAY", flush=True)
            time.sleep(600)

    module._roll_slots = roll_then_hang
    pair.rollups.refresh(chunk_slots=32)
    """
)


@pytest.mark.slow  # a refresh in a process of its own, killed
def test_a_refresh_killed_midway_leaves_exact_numbers(pair, db_url):
    """SIGKILL inside the third chunk's transaction: two chunks stay, nothing else."""
    history(pair)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLER, db_url], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout.readline().strip() == "MIDWAY"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    mark = pair.watermark()
    assert mark.watermark_slot == mark.start_slot - mark.start_slot % 32 + 2 * 32
    with pair.engine.connect() as conn:
        for kind in KINDS:
            table = kind.table("slot")
            beyond = select(func.count()).where(table.c.bucket >= mark.watermark_slot)
            assert conn.execute(beyond).scalar_one() == 0, kind.name
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])

    def refreshed():  # the killed session's lock goes when its server process notices
        report = pair.rollups.refresh(chunk_slots=32)
        return None if report.busy else report

    report = wait_until(refreshed, "the killed refresh's lock to go")
    assert report.watermark_slot == slot_of(NOW - rs.HORIZON)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


@pytest.mark.slow  # refreshes over six days of history
def test_a_failing_chunk_rolls_back_and_the_next_refresh_resumes(pair, monkeypatch):
    """An error after a chunk's rows are written leaves the watermark where it was."""
    from omni_dashboard_plugin.rollups import refresh as module

    history(pair, days=2)
    pair.rollups.refresh(until=NOW - timedelta(days=1), chunk_slots=32)
    before, rows = pair.watermark(), rolled_rows(pair)

    def fail(connection, low, high, start):
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "_roll_whole", fail)
    with pytest.raises(RuntimeError):
        pair.rollups.refresh(chunk_slots=96)
    assert pair.watermark() == before and rolled_rows(pair) == rows
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    monkeypatch.undo()
    pair.rollups.refresh()
    assert pair.watermark().watermark_slot == slot_of(NOW - rs.HORIZON)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


@pytest.mark.slow  # concurrent refreshes over six days of history
def test_concurrent_refreshes_count_every_row_once(pair):
    """Four threads refresh at once (two Rollups on separate engines): the numbers stay
    exact, and where one holds the lock the others report busy or find nothing to do."""
    history(pair)
    other = rs.Pair.attach(str(pair.engine.url.render_as_string(hide_password=False)))
    reports, errors = [], []

    def run(rollups):
        try:
            reports.append(rollups.refresh(chunk_slots=16))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in [pair.rollups, other.rollups] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    start, target = pair.watermark().start_slot, slot_of(NOW - rs.HORIZON)
    assert pair.watermark().watermark_slot == target
    assert sum(r.chunks for r in reports) == (target - 1) // 16 - start // 16 + 1
    assert pair.rollups.refresh().chunks == 0
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_the_request_path_refreshes_stale_rollups_in_the_background(db_url):
    """With OMNI_DASHBOARD_ROLLUPS_REFRESH=request a read starts one background refresh."""
    pair = rs.Pair(db_url, OMNI_DASHBOARD_ROLLUPS_REFRESH="request")
    history(pair, days=1)
    assert pair.watermark() is None
    pair.get(pair.on, "/api/v2/event-ops/metrics")
    pair.rollups.wait(60)
    assert pair.watermark().watermark_slot == slot_of(NOW - rs.HORIZON)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


def test_bad_rollup_settings_stop_start_up_with_the_fix(db_url):
    for key, value, hint in [
        ("OMNI_DASHBOARD_ROLLUPS", "sometimes", "off, on, auto"),
        ("OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES", "5", "between 15 and 10080"),
        ("OMNI_DASHBOARD_ROLLUPS_REFRESH", "hourly", "request, cron"),
    ]:
        with pytest.raises(ConfigError, match=hint):
            build_app(db_url, **{key: value})
    assert RollupSettings.from_mapping({}) == RollupSettings("auto", 30, "request")


def test_auto_is_off_on_sqlite_and_on_on_postgresql(db_url):
    app = build_app(db_url, OMNI_DASHBOARD_ROLLUPS="auto")
    rollups = app.extensions["omni_dashboard"].rollups
    assert rollups.active == db_url.startswith("postgresql")


def test_without_the_plugin_no_rollup_table_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    build_app(url, OMNI_LOAD_PLUGINS=False, OMNI_DASHBOARD_ROLLUPS="on")
    with create_engine(url).connect() as conn:
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars()
        assert not [n for n in names if n.startswith("omni_dashboard_")]


@pytest.fixture
def no_ddl_url(pg_url):
    """A database of its own with Omni's tables, and a role that may read them but not
    create anything."""
    suffix = uuid.uuid4().hex[:8]
    name, role = f"omni_noddl_{suffix}", f"reader_{suffix}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
    own = make_url(pg_url).set(database=name)
    build_app(own.render_as_string(hide_password=False))  # Omni's tables, rollups off
    owner = create_engine(own, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    owner.dispose()
    yield own.set(username=role).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


def test_a_host_without_ddl_runs_with_rollups_off_or_is_told_how_to_fix_it(no_ddl_url):
    app = build_app(no_ddl_url, OMNI_DASHBOARD_ROLLUPS="auto")
    assert not app.extensions["omni_dashboard"].rollups.active
    response = app.test_client().get("/api/v2/event-ops/metrics", headers={"x-api-key": API_KEY})
    assert response.status_code == 200
    with pytest.raises(ConfigError, match=r"grant CREATE .* or set OMNI_DASHBOARD_ROLLUPS=off"):
        build_app(no_ddl_url, OMNI_DASHBOARD_ROLLUPS="on")


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_reads_stay_exact_when_the_refresher_clock_runs_ahead(pair):
    """A cron refresher three hours ahead rolls slots this process still reads raw."""
    history(pair, days=2, every_minutes=7)
    pair.clock.now = NOW + timedelta(hours=3)
    pair.rollups.refresh()
    pair.clock.now = NOW
    assert pair.watermark().watermark_slot > slot_of(NOW - rs.HORIZON)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_retention_cutting_into_the_oldest_rolled_slot_is_read_raw(pair):
    """A retention job that deletes part of the oldest slot's rows, after the refresh that
    rolled it: that slot is read raw (its rolled rows hold the deleted ones); a cut on a
    slot boundary leaves the oldest slot whole, read from its rollups."""
    history(pair, days=2, every_minutes=7)
    pair.rollups.refresh()
    oldest = NOW - timedelta(minutes=7 * (2 * 24 * 60 // 7))
    boundary = slot_time(slot_of(oldest) + 2)
    rs.retention(pair.engine, boundary)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    with pair.engine.connect() as conn:
        assert first_whole_slot(conn, KINDS[0]) == slot_of(boundary)
    mid_slot = boundary + timedelta(minutes=8)
    rs.retention(pair.engine, mid_slot)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    with pair.engine.connect() as conn:
        assert first_whole_slot(conn, KINDS[0]) == slot_of(boundary) + 1


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_the_oldest_slot_is_counted_once_per_version_and_oldest_row(pg_url):
    """PostgreSQL: the oldest slot's rows are counted by the first read after a refresh
    and after each retention cut, not by every read (the count reads a slot's worth of
    rows); a cut made between two reads is still read raw, exactly."""
    pair = rs.Pair(pg_url)
    history(pair, days=2, every_minutes=7)
    pair.rollups.refresh()
    counted = []

    def record(conn, cursor, statement, *args):
        if "count(*)" in statement and "min(omni_events.received_at)" in statement:
            counted.append(statement)

    event.listen(pair.engine, "before_cursor_execute", record)
    try:
        path = "/api/v2/events/analytics?allTime=true"
        for _ in range(3):
            pair.get(pair.on, path)
        assert len(counted) == 1
        oldest = NOW - timedelta(minutes=7 * (2 * 24 * 60 // 7))
        rs.retention(pair.engine, slot_time(slot_of(oldest) + 2) + timedelta(minutes=8))
        assert pair.get(pair.on, path) == pair.get(pair.off, path)
        assert len(counted) == 2
        pair.rollups.refresh()  # caught up already: nothing committed, the same version
        pair.get(pair.on, path)
        assert len(counted) == 2
        pair.clock.now = NOW + timedelta(minutes=30)
        assert pair.rollups.refresh().chunks  # a slot rolled: a new version, counted again
        pair.get(pair.on, path)
        assert len(counted) == 3
    finally:
        event.remove(pair.engine, "before_cursor_execute", record)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_totals_keep_one_row_per_key_across_refreshes(pair):
    """Refreshes add to a total table in place, NULL keys (a completed event's stage)
    included, so that it stays as small as the kind's distinct keys."""
    history(pair, days=2, every_minutes=7)
    for hours in (40, 30, 20, 0):
        pair.rollups.refresh(until=NOW - timedelta(hours=hours), chunk_slots=32)
    with pair.engine.connect() as conn:
        for kind in (k for k in KINDS if k.cumulative):
            keys = [kind.dims[d] for d in kind.dims]
            distinct = select(*keys).where(kind.time < slot_time(slot_of(NOW - rs.HORIZON)))
            if kind.where is not None:
                distinct = distinct.where(kind.where)
            expected = conn.execute(
                select(func.count()).select_from(distinct.distinct().subquery())
            ).scalar_one()
            stored = conn.execute(
                select(func.count()).select_from(kind.table("total"))
            ).scalar_one()
            assert stored == expected, kind.name


@pytest.mark.slow  # statements that outlast a timeout
def test_the_refresh_is_not_held_to_the_hosts_statement_timeout(pg_url, monkeypatch):
    """The host may cap statements for requests; the refresh, maintenance, lifts the cap."""
    from host_example.db import make_engine
    from omni_dashboard_plugin.rollups import refresh as module

    pair = rs.Pair(pg_url)
    history(pair, days=3)
    real = module._roll_slots

    def slow_then_roll(connection, low, high):  # a statement longer than the host's cap
        connection.exec_driver_sql("SELECT pg_sleep(0.3)")
        real(connection, low, high)

    monkeypatch.setattr(module, "_roll_slots", slow_then_roll)
    capped = make_engine(pg_url, statement_timeout_ms=100)
    try:
        with capped.connect() as conn, pytest.raises(Exception, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(0.3)"))  # the host's own statements are capped
        report = module.refresh(capped, NOW, rs.HORIZON, max_chunks=2)
    finally:
        capped.dispose()
    assert report.chunks == 2 and not report.busy
    assert rolled_rows(pair) > 0


# Dims a slipped row names, where its kind has them (NULL would be no channel).
NAMED = {"channel": "slack", "direction": "inbound"}


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_whole_hours_are_read_from_the_hour_tables(pair):
    """A 24-hour window reads its whole hours from the hour tables: a row slipped into
    them (which no write made) shows in the 24-hour counts; rolled back, the answers match
    rollups off again."""
    history(pair, days=2)
    pair.rollups.refresh()
    before = json.loads(pair.get(pair.on, "/api/v2/events/analytics"))
    hour = slot_of(NOW - timedelta(hours=20)) // 4
    kinds = [kind for kind in KINDS if kind.source.name == "omni_events"]
    with pair.engine.begin() as conn:
        for kind in kinds:
            named = {d: v for d, v in NAMED.items() if d in kind.dims}
            row = rs.slipped_row(kind, bucket=hour, **named)
            conn.execute(insert(kind.table("hour")).values(**row))
    after = json.loads(pair.get(pair.on, "/api/v2/events/analytics"))
    assert after["totalMessages"] == before["totalMessages"] + 1000
    with pair.engine.begin() as conn:
        for kind in kinds:
            table = kind.table("hour")
            conn.execute(delete(table).where(table.c.bucket == hour, table.c.n == 1000))
    rs.assert_same(pair, (NOW - timedelta(hours=24), NOW), rs.INSTANCE_IDS[1])


OLD_LAYOUT_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER {name} AFTER INSERT ON dead_letter_events BEGIN SELECT 1; END",
    ],
    "postgresql": [
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
        "CREATE TRIGGER {name} AFTER INSERT ON omni_events EXECUTE FUNCTION {name}()",
    ],
}


def _triggers(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            found = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return set(conn.execute(text(found)).scalars())


def test_install_drops_the_triggers_of_earlier_layouts(pair):
    """An upgrade to a new layout drops the old layout's triggers (which would go on
    writing into tables no read uses), and leaves the host's own and the current ones."""
    dialect = pair.engine.dialect.name
    with pair.engine.begin() as conn:
        for name in ("omni_dashboard_r4_old_insert", "host_audit_insert"):
            for statement in OLD_LAYOUT_TRIGGERS[dialect]:
                conn.execute(text(statement.format(name=name)))
    current = {name for name in _triggers(pair.engine) if name.startswith("omni_dashboard_r5_")}
    assert current and "omni_dashboard_r4_old_insert" in _triggers(pair.engine)
    try:
        assert pair.rollups.install()
        left = _triggers(pair.engine)
        assert "omni_dashboard_r4_old_insert" not in left
        assert {"host_audit_insert", *current} <= left
        if dialect == "postgresql":
            with pair.engine.connect() as conn:
                functions = "SELECT proname FROM pg_proc WHERE proname LIKE 'omni_dashboard_r4%'"
                assert conn.execute(text(functions)).all() == []
    finally:
        with pair.engine.begin() as conn:
            target = "dead_letter_events" if dialect == "sqlite" else "omni_events"
            on = "" if dialect == "sqlite" else f" ON {target}"
            conn.execute(text(f"DROP TRIGGER IF EXISTS host_audit_insert{on}"))
            if dialect == "postgresql":
                conn.execute(text("DROP FUNCTION IF EXISTS host_audit_insert()"))


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_an_instance_timeline_is_read_from_its_own_kind(pair):
    """The timeline and 24-hour counts of a dashboard narrowed to an instance come from
    `instance_slots` (a row per slot and channel of an instance, not per status and
    direction too): a row slipped into it shows in both; taken out, on and off agree."""
    history(pair, days=2)
    pair.rollups.refresh()
    path = f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[1]}"
    before = json.loads(pair.get(pair.on, path))["events"]
    slot = slot_of(NOW - timedelta(hours=5))
    table = INSTANCE_SLOTS.table("slot")
    row = rs.slipped_row(
        INSTANCE_SLOTS, bucket=slot, instance_id=rs.INSTANCE_IDS[1], channel="discord", failed=10
    )
    with pair.engine.begin() as conn:
        conn.execute(insert(table).values(**row))
    after = json.loads(pair.get(pair.on, path))["events"]
    assert after["last24h"] == before["last24h"] + 1000
    assert after["failed24h"] == before["failed24h"] + 10
    assert (
        sum(b["count"] for b in after["timeline"])
        == sum(b["count"] for b in before["timeline"]) + 1000
    )
    with pair.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.bucket == slot, table.c.n == 1000))
    rs.assert_same(pair, (NOW - timedelta(hours=24), NOW), rs.INSTANCE_IDS[1])
