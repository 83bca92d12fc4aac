"""The recent rolled slots by fine bucket (rollups.fine): a window's unaligned edges are
read from them, exactly, and a refresh keeps the last days of them, on SQLite and
PostgreSQL."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from omni_dashboard_plugin.grid import EPOCH, FINE, FINES_PER_SLOT, slot_of, slot_time
from omni_dashboard_plugin.rollups import fine
from omni_dashboard_plugin.rollups.kinds import (
    AUTOMATIONS_FINE,
    COUNTS_FINE,
    EDGES_FINE,
    FINES,
    state,
)

from . import rollup_support as rs
from .conftest import NOW

# An instant between two fine buckets, so that every window the dashboard reads from it
# (the last hour, the last 24 hours and their earlier windows) starts inside one.
ODD_NOW = NOW + timedelta(minutes=7, seconds=23, microseconds=456789)


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url, OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES=30)


def _dense_history(pair, hours: int, every_seconds: int) -> None:
    """On a cleared pair: an event every ``every_seconds`` over the ``hours`` before
    ``ODD_NOW``, their statuses, channels and instances varied, and an automation log
    every third of them, its status and automation varied."""
    pair.clear(ODD_NOW)
    specs = [{**rs.SAMPLE_EVENT, "status": s} for s in ("completed", "failed", "received")]
    moments = range(0, hours * 3600, every_seconds)
    statuses = ("success", "failed", "skipped", "failed")
    rs.write(
        pair.engine,
        events=[
            rs.event_row(
                ODD_NOW - timedelta(seconds=s),
                {**specs[s % 3], "instance": s % len(rs.INSTANCE_IDS), "processing": s % 997},
            )
            for s in moments
        ],
        logs=[
            rs.log_row(
                ODD_NOW - timedelta(seconds=s),
                {"status": statuses[s % 4], "automation": s % 3, "actions": [], "time": s % 89},
            )
            for s in moments[::3]
        ],
    )


def _fine_range(pair):
    with pair.engine.connect() as conn:
        found = conn.execute(
            select(state.c.start_slot, state.c.watermark_slot).where(
                state.c.name == fine.STATE_NAME
            )
        ).one_or_none()
    return found and tuple(found)


def test_unaligned_windows_read_alike(pair):
    """Windows that start and end inside fine buckets, a second either side of their edges
    included, answer with rollups on as they do raw."""
    _dense_history(pair, hours=27, every_seconds=7)
    pair.rollups.refresh()
    stored = _fine_range(pair)
    assert stored is not None and stored[0] < stored[1] == pair.watermark().watermark_slot
    for start, length in ((timedelta(hours=2, seconds=3), 40), (timedelta(hours=26), 61)):
        since = ODD_NOW - start
        for shift in (-1, 0, 1):
            window = (since + timedelta(seconds=shift), since + timedelta(minutes=length))
            rs.assert_same(pair, window, rs.INSTANCE_IDS[1])


def _last_hour(pair, app, path: str) -> int:
    body = json.loads(pair.get(app, path))  # the dashboard's has no envelope
    return body["data"]["eventsLastHour"] if "data" in body else body["events"]["lastHour"]


@pytest.mark.parametrize(
    "family, path",
    [
        (EDGES_FINE, "/api/v2/event-ops/metrics"),
        (COUNTS_FINE, f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[1]}"),
    ],
    ids=["edges", "counts"],
)
def test_a_window_edge_is_read_from_the_fine_rows(pair, family, path):
    """A row slipped into a family's fine table (which no write made) in the bucket after
    the last hour's start shows in the last hour's count; one in the bucket holding that
    start, read raw, does not. A filter on an instance reads the counts family's."""
    _dense_history(pair, hours=3, every_seconds=11)
    pair.rollups.refresh()
    before = _last_hour(pair, pair.on, path)
    assert before == _last_hour(pair, pair.off, path)
    start = (ODD_NOW - timedelta(hours=1) - EPOCH) // FINE
    assert slot_of(EPOCH + start * FINE) < pair.watermark().watermark_slot
    dims = {"status": "completed"}
    if "instance_id" in family.dims:
        dims["instance_id"] = rs.INSTANCE_IDS[1]
    with pair.engine.begin() as conn:
        for bucket in (start, start + 1):
            row = rs.slipped_row(family, bucket=bucket, **dims)
            conn.execute(insert(family.table("fine")).values(**row))
    assert _last_hour(pair, pair.on, path) == before + 1000


def test_the_automations_last_24_hours_edge_is_read_from_the_fine_rows(pair):
    """A failed automation log slipped into the automations' fine table in the bucket after
    the last 24 hours' start shows in the recent failures; one in the bucket holding that
    start, read raw, does not."""
    _dense_history(pair, hours=26, every_seconds=53)
    pair.rollups.refresh()
    path = "/api/v2/automation-metrics"
    before = json.loads(pair.get(pair.on, path))["recentFailures"]
    assert before == json.loads(pair.get(pair.off, path))["recentFailures"]
    start = (ODD_NOW - timedelta(hours=24) - EPOCH) // FINE
    with pair.engine.begin() as conn:
        for bucket in (start, start + 1):
            row = rs.slipped_row(AUTOMATIONS_FINE, bucket=bucket, status="failed")
            conn.execute(insert(AUTOMATIONS_FINE.table("fine")).values(**row))
    assert json.loads(pair.get(pair.on, path))["recentFailures"] == before + 1000


def _fine_total(conn, kind, low: int, high: int) -> int:
    table = kind.table("fine")
    where = [table.c.bucket >= low * FINES_PER_SLOT, table.c.bucket < high * FINES_PER_SLOT]
    return conn.execute(select(func.coalesce(func.sum(table.c.n), 0)).where(*where)).scalar()


def _raw_total(conn, kind, low: int, high: int) -> int:
    where = [kind.time >= slot_time(low), kind.time < slot_time(high)]
    return conn.execute(select(func.count()).select_from(kind.source).where(*where)).scalar()


def _assert_kept(pair, start: int, end: int) -> None:
    """The fine state names ``[start, end)``; each family's fine rows count each event of
    its last slots of it once, and no fine row lies before them."""
    assert _fine_range(pair) == (start, end)
    with pair.engine.connect() as conn:
        for kind in FINES:
            low = max(start, end - fine.KEPT_SLOTS[kind.name])
            assert fine.kept(kind, (start, end), end) == (low, end)
            assert _fine_total(conn, kind, 0, low) == _fine_total(conn, kind, end, 2**40) == 0
            assert _fine_total(conn, kind, low, end) == _raw_total(conn, kind, low, end) > 0


def test_refresh_keeps_the_last_days(pair):
    """Each family's fine rows cover its last days of rolled slots, every event of them
    once; a day later the oldest day is gone; a series stored with another bucket width (an
    earlier release's) is dropped, its rows too, and the fine rows start again at the next
    chunk."""
    rs.regular_history(pair, days=10, every_minutes=13, spec=rs.SAMPLE_EVENT)
    longest = max(fine.KEPT_SLOTS.values())
    pair.rollups.refresh()
    end = pair.watermark().watermark_slot
    _assert_kept(pair, end - longest, end)
    pair.clock.now += timedelta(days=1)
    pair.rollups.refresh()
    later = pair.watermark().watermark_slot
    _assert_kept(pair, later - longest, later)
    with pair.engine.begin() as conn:  # as a release of 1-second buckets would leave it
        renamed = state.update().where(state.c.name == fine.STATE_NAME)
        conn.execute(renamed.values(name="fine:1s:edges_fine+counts_fine"))
        for kind in FINES:  # numbered by the second: beyond every 10-second bucket now
            stray = rs.slipped_row(kind, bucket=later * FINES_PER_SLOT * 10)
            conn.execute(insert(kind.table("fine")).values(**stray))
    pair.clock.now += timedelta(hours=2)
    moments = [pair.clock.now - timedelta(seconds=s) for s in range(0, 2 * 3600, 37)]
    logged = {"status": "failed", "automation": 1, "actions": None, "time": 3}
    rs.write(
        pair.engine,
        events=[rs.event_row(at, rs.SAMPLE_EVENT) for at in moments],
        logs=[rs.log_row(at, logged) for at in moments[::4]],
    )
    pair.rollups.refresh()
    _assert_kept(pair, later, pair.watermark().watermark_slot)
    with pair.engine.connect() as conn:
        names = conn.execute(select(state.c.name).where(state.c.name.like("fine%"))).scalars()
        assert list(names) == [fine.STATE_NAME]
    window = (pair.clock.now - timedelta(hours=3, seconds=5), pair.clock.now)
    rs.assert_same(pair, window, rs.INSTANCE_IDS[0])


def test_a_refresh_from_scratch_stores_only_the_kept_days(pair):
    """A refresh that catches up over a month of history scans for fine rows only the
    chunks within the longest-kept family's last days (each chunk a UTC day on
    PostgreSQL; on SQLite, at most 500 rows of a source): rows its later chunks would drop
    are never stored."""
    rs.regular_history(pair, days=30, every_minutes=97, spec=rs.SAMPLE_EVENT)
    inserts = lambda sql: sql.startswith("INSERT INTO omni_dashboard_r5_edges_fine")  # noqa: E731
    with rs.statements(pair.engine, inserts) as found:
        report = pair.rollups.refresh()
    end = pair.watermark().watermark_slot
    _assert_kept(pair, end - max(fine.KEPT_SLOTS.values()), end)
    kept_days = max(fine.KEPT_SLOTS.values()) // (24 * 4)
    assert report.chunks > kept_days + 10  # a month of chunks, most of them before
    assert 0 < len(found) <= kept_days + 2
