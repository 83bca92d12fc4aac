"""The dashboard served from a PostgreSQL hot standby, for real: a primary and a streaming
standby this test creates (initdb, pg_basebackup). Once the standby has replayed the
primary's WAL, every dashboard-facing answer and the scrape's numbers from an app on the
standby equal those of an app on the primary; the standby is asked to write nothing (its
log records every modifying statement it is sent, and every error); the refresh runs on
the primary only; a standby that lags says so in the scrape."""

import json
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from host_example.seed import SeedPlan, seed
from host_example.tables import instances
from omni_dashboard_plugin.sql.standby import ReadOnlyDatabase

from .conftest import API_KEY, NOW, Clock, build_app
from .rollup_support import SAMPLE_EVENT, event_row, urls, write
from .standby_support import StandbyPair
from .test_install import flask
from .waiting import wait_until

pytestmark = pytest.mark.slow

SCRAPE = "/api/v2/dashboard/metrics"
LAG = "omni_dashboard_standby_lag_seconds"
WATERMARK_LAG = "omni_dashboard_rollups_watermark_lag_seconds"
UNOWNED = {**SAMPLE_EVENT, "instance": 3}  # an event of no instance (rollup_support's own)
PER_PROCESS = ("omni_dashboard_stream_", "omni_dashboard_nats_", "omni_dashboard_rollups_refresh")


@pytest.fixture(scope="module")
def pair():
    servers = StandbyPair().start()
    yield servers
    servers.stop()


def get(app, url) -> bytes:
    response = app.test_client().get(url, headers={"x-api-key": API_KEY})
    assert response.status_code == 200, (url, response.get_data(as_text=True)[:500])
    return response.data


def answer(app, url):
    """An answer as compared: the dashboard's measured database latency left out."""
    body = get(app, url)
    if url.startswith("/api/v2/dashboard"):
        return {**json.loads(body), "system": None}
    return body


def scrape(app) -> dict:
    """The scrape's samples by family, the per-process families left out."""
    text = get(app, SCRAPE).decode()
    return {
        family.name: sorted(
            (s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples
        )
        for family in text_string_to_metric_families(text)
        if not family.name.startswith(PER_PROCESS)
    }


def lag_of(app) -> float:
    return scrape(app)[LAG][0][2]


def dashboard_urls(engine) -> list[str]:
    """rollup_support's URLs: all-time, default, zoned, filtered and compared windows."""
    with engine.connect() as connection:
        instance = connection.execute(select(instances.c.id).order_by(instances.c.id)).first()[0]
    window = (NOW - timedelta(days=2, minutes=7), NOW - timedelta(hours=3))
    return urls(window, instance)


def assert_same_answers(primary, standby) -> None:
    for url in dashboard_urls(primary.extensions["omni_host"].engine):
        assert answer(standby, url) == answer(primary, url), url
    on_primary, on_standby = scrape(primary), scrape(standby)
    assert on_standby.pop(LAG)  # (0 or nearly: the primary's own WAL, autovacuum's, flows on)
    assert on_standby == on_primary
    assert WATERMARK_LAG in on_primary  # rollups served both


def test_a_standby_answers_as_the_primary_writes_nothing_and_shows_its_lag(pair):
    clock = Clock()
    common = {
        "OMNI_CLOCK": clock,
        "OMNI_DASHBOARD_ROLLUPS": "on",
        "OMNI_DASHBOARD_CACHE_SECONDS": 0,
    }
    primary = build_app(pair.primary.url, OMNI_DASHBOARD_ROLLUPS_REFRESH="cron", **common)
    engine = primary.extensions["omni_host"].engine
    seed(engine, SeedPlan(events=3000, days=4, now=NOW))
    primary_rollups = primary.extensions["omni_dashboard"].rollups
    primary_rollups.refresh()
    late = [event_row(NOW - timedelta(minutes=m), UNOWNED) for m in (3, 17, 41)]
    write(engine, events=late)  # the raw tail, kept by the triggers
    pair.wait_for_replay()

    # The standby's app: the defaults, so a read that finds a tail to fold would refresh.
    standby = build_app(pair.standby.url, **common)
    standby_rollups = standby.extensions["omni_dashboard"].rollups
    assert standby_rollups.active and standby_rollups.read_only()
    wait_until(lambda: lag_of(standby) == 0, "the standby to report no lag")
    assert_same_answers(primary, standby)
    assert standby_rollups._thread is not None  # a read asked for a refresh ...
    standby_rollups.wait(30)  # ... which looked, and wrote nothing
    with pytest.raises(ReadOnlyDatabase, match="primary"):
        standby_rollups.refresh()
    for command in ("refresh", "install"):
        refused = flask(pair.standby.url, command)
        assert refused.returncode != 0 and "primary" in refused.stderr, refused.stderr
    assert pair.standby_complaints() == []

    # Replay paused: the primary takes events and rolls them up; the standby lags, and
    # its scrape says by how much instead of passing old numbers off as current.
    pair.on_standby("SELECT pg_wal_replay_pause()")
    clock.now = NOW + timedelta(hours=2)
    later = [event_row(clock.now - timedelta(minutes=m), UNOWNED) for m in (5, 70)]
    write(engine, events=later)
    primary_rollups.refresh()
    pair.wait_for_receipt()
    assert lag_of(standby) > 0
    ahead, behind = scrape(primary), scrape(standby)
    assert LAG not in ahead
    assert behind[WATERMARK_LAG][0][2] > ahead[WATERMARK_LAG][0][2]
    assert behind["omni_events"] != ahead["omni_events"]

    pair.on_standby("SELECT pg_wal_replay_resume()")
    pair.wait_for_replay()
    wait_until(lambda: lag_of(standby) == 0, "the standby to catch up")
    assert_same_answers(primary, standby)
    assert pair.standby_complaints() == []
