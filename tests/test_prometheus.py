"""GET /api/v2/dashboard/metrics: every family equals an independent computation over
random data (SQLite and PostgreSQL, rollups on and off), parsed with prometheus_client's
own parsers; the key, the path setting, the importable collector and the plugin's own
per-process families."""

import math
import uuid
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from host_example.tables import (
    automation_logs,
    dead_letter_events,
    instances,
    omni_events,
)
from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.grid import slot_time
from omni_dashboard_plugin.live.hub import Filters
from omni_dashboard_plugin.metrics import DashboardCollector

from . import oracle
from . import rollup_support as rs
from .conftest import API_KEY, NOW, build_app
from .live_support import Served, omni_message
from .waiting import wait_until

PATH = "/api/v2/dashboard/metrics"
DATA_FAMILIES = {
    "omni_events",
    "omni_event_processing_seconds",
    "omni_dead_letters",
    "omni_automation_executions",
    "omni_automation_actions",
    "omni_instances",
}


def samples(families, names=DATA_FAMILIES) -> dict:
    """``{(sample name, sorted labels): value}`` of the named families (``le`` as a float;
    no ``_created`` samples, which say when a process made its counter)."""
    found = {}
    for family in families:
        if family.name not in names:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {k: float(v) if k == "le" else v for k, v in sample.labels.items()}
            found[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return found


def scrape(app, path=PATH, accept=None):
    headers = {"x-api-key": API_KEY, **({"Accept": accept} if accept else {})}
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == 200, response.data
    return response


def scraped(app, names=DATA_FAMILIES) -> dict:
    return samples(text_string_to_metric_families(scrape(app).get_data(as_text=True)), names)


def rows(engine, table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(table))]


def expected(engine) -> dict:
    """The oracle over the rows as they are in the database now."""
    return oracle.prometheus_samples(
        rows(engine, omni_events),
        rows(engine, automation_logs),
        rows(engine, dead_letter_events),
        rows(engine, instances),
    )


def assert_equal(got: dict, want: dict) -> None:
    sums = [key for key in want if key[0].endswith("_sum")]
    for key in sums:  # a float of the database's exact integer sum
        assert math.isclose(got.pop(key), float(want[key]), rel_tol=1e-12, abs_tol=1e-9), key
    want = {k: v for k, v in want.items() if k not in sums}
    assert got == want


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


dead_status = st.sampled_from(("pending", "retrying", "resolved", "abandoned", "parked"))


@pytest.mark.slow  # a Hypothesis search, each example on two apps with rollups refreshed
@rs.pair_examples(0.15)
@given(
    events=rs.history,
    logs=rs.logs,
    dead=st.lists(dead_status, max_size=12),
    active=st.lists(st.booleans(), min_size=3, max_size=3),
    first_refresh=rs.offset,
    steps=st.lists(rs.step, max_size=5),
)
def test_every_family_equals_the_oracle(pair, events, logs, dead, active, first_refresh, steps):
    """Random history, a refresh to a random point, random steps (late writes, status
    changes, retention, deleted instances and automations); after each, both apps' scrapes
    equal the oracle over the rows then in the database."""
    pair.clear(rs.START)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(
        pair.engine,
        events=[rs.event_row(at(m), spec) for m, spec in events],
        logs=[rs.log_row(at(m), spec) for m, spec in logs],
        dead=[{"id": uuid.uuid4(), "status": status} for status in dead],
    )
    with pair.engine.begin() as conn:
        for key, is_active in zip(rs.INSTANCE_IDS, active, strict=True):
            conn.execute(update(instances).where(instances.c.id == key).values(is_active=is_active))
    gone = set()
    for action, value in [("refresh", first_refresh), *steps]:
        rs.apply_step(pair, action, value, events, gone)
        want = expected(pair.engine)
        for app in (pair.on, pair.off):
            assert_equal(scraped(app), dict(want))


def test_openmetrics_when_asked_and_the_same_numbers(pair):
    pair.clear(NOW)
    rs.write(
        pair.engine,
        events=[rs.event_row(NOW - timedelta(minutes=m), rs.SAMPLE_EVENT) for m in range(40)],
    )
    response = scrape(pair.off, accept="application/openmetrics-text")
    assert response.content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = response.get_data(as_text=True)
    assert text.endswith("# EOF\n")
    assert_equal(samples(parse_openmetrics(text)), expected(pair.engine))
    plain = scrape(pair.off)
    assert plain.content_type.startswith("text/plain; version=0.0.4")


def test_a_host_registry_can_collect_it_instead(pair):
    """The collector, registered in a registry of the host's own, reports the same."""
    pair.clear(NOW)
    rs.write(pair.engine, events=[rs.event_row(NOW, rs.SAMPLE_EVENT)])
    registry = CollectorRegistry()
    registry.register(DashboardCollector(pair.off.extensions["omni_dashboard"]))
    text = generate_latest(registry).decode()
    assert_equal(samples(text_string_to_metric_families(text)), expected(pair.engine))


def test_no_key_no_scrape(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'k.db'}")
    client = app.test_client()
    for headers in ({}, {"x-api-key": "wrong"}):
        response = client.get(PATH, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "UNAUTHORIZED"
        assert b"omni_" not in response.data


def test_the_path_setting(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    moved = build_app(url, OMNI_DASHBOARD_METRICS_PATH="/api/v2/ops/prometheus")
    assert scrape(moved, "/api/v2/ops/prometheus").data.startswith(b"# HELP omni_")
    assert moved.test_client().get(PATH, headers={"x-api-key": API_KEY}).status_code == 404
    off = build_app(url, OMNI_DASHBOARD_METRICS_PATH="off")
    assert off.test_client().get(PATH, headers={"x-api-key": API_KEY}).status_code == 404
    paths = off.test_client().get("/openapi.json").get_json()["paths"]
    assert not [p for p in paths if "metrics" in p and "dashboard" in p]
    for bad in ("metrics", "/api/v2/<x>", "/a b", "/a//b", "/api/v2/x/../m", "/api/v2/./m"):
        with pytest.raises(ConfigError, match=r"OMNI_DASHBOARD_METRICS_PATH.*'off'"):
            build_app(url, OMNI_DASHBOARD_METRICS_PATH=bad)


@pytest.mark.parametrize(
    ("path", "route"),
    [("/api/v2/dashboard", "dashboard.summary"), ("/api/v2/health", "health.health")],
)
def test_a_path_another_route_serves_stops_start_up(tmp_path, path, route):
    """The plugin's own route or the host's: one of the two would never be reached."""
    with pytest.raises(ConfigError, match=rf"METRICS_PATH='{path}' .*'{route}'.*'off'"):
        build_app(f"sqlite:///{tmp_path / 's.db'}", OMNI_DASHBOARD_METRICS_PATH=path)


def test_openapi_documents_the_scrape(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'o.db'}")
    operation = app.test_client().get("/openapi.json").get_json()["paths"]["/dashboard/metrics"]
    content = operation["get"]["responses"]["200"]["content"]
    assert set(content) == {
        "text/plain; version=0.0.4; charset=utf-8",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }


def own(app) -> dict:
    """The plugin's own families, by sample name (no labels but ``le``)."""
    names = {
        "omni_dashboard_stream_clients",
        "omni_dashboard_stream_deliveries",
        "omni_dashboard_stream_overflows",
        "omni_dashboard_stream_resets",
        "omni_dashboard_nats_connected",
        "omni_dashboard_rollups_watermark_lag_seconds",
        "omni_dashboard_rollups_refresh_seconds",
    }
    return {
        (name if not labels else (name, labels[0][1])): value
        for (name, labels), value in scraped(app, names).items()
    }


@pytest.mark.slow  # streams over real HTTP until one overflows
def test_stream_families_count_what_clients_got(tmp_path):
    """Real SSE streams on a served app: clients, deliveries, a reset for an unknown id,
    and an overflow of a client that reads nothing."""
    app = build_app(
        f"sqlite:///{tmp_path / 's.db'}",
        OMNI_DASHBOARD_STREAM_QUEUE=5,
        OMNI_DASHBOARD_STREAM_HEARTBEAT=1,
    )
    live = app.extensions["omni_dashboard"].live
    server = Served(app)
    try:
        assert own(app)["omni_dashboard_stream_clients"] == 0
        assert "omni_dashboard_nats_connected" not in own(app)  # no NATS configured
        _, first, hang_first = server.stream("/api/v2/events/stream", API_KEY)
        first.take(1, "connected")
        _, second, hang_second = server.stream(
            "/api/v2/events/stream", API_KEY, {"Last-Event-ID": "bogus"}
        )
        assert second.take(1, "reset")[0]["data"]["reason"] == "unknown id"
        stalled = live.hub().subscribe(Filters(), None)  # reads nothing: overflows at 6
        metrics = own(app)
        assert metrics["omni_dashboard_stream_clients"] == 3
        assert metrics["omni_dashboard_stream_resets_total"] == 1
        for n in range(3):
            live.publish("message.received.slack.i", omni_message("message.received", n=n))
        first.take(3, "event.received")
        second.take(3, "event.received")
        assert own(app)["omni_dashboard_stream_deliveries_total"] == 9
        for n in range(3, 6):
            live.publish("message.received.slack.i", omni_message("message.received", n=n))
        first.take(3, "event.received")
        second.take(3, "event.received")
        metrics = own(app)
        assert metrics["omni_dashboard_stream_overflows_total"] == 1
        assert metrics["omni_dashboard_stream_deliveries_total"] == 9 + 6 + 2
        assert metrics["omni_dashboard_stream_clients"] == 2
        assert stalled.subscription.closed
        hang_first.close()
        hang_second.close()
        wait_until(
            lambda: own(app)["omni_dashboard_stream_clients"] == 0, "the closed streams to go"
        )
    finally:
        live.stop()
        server.close()


@pytest.mark.slow  # a real nats-server
def test_nats_connected_family(tmp_path, nats_server):
    app = build_app(f"sqlite:///{tmp_path / 'n.db'}", OMNI_NATS_URL=nats_server.url)
    try:
        wait_until(  # the first scrape starts this process's bridge
            lambda: own(app).get("omni_dashboard_nats_connected") == 1,
            "the bridge to report NATS connected",
        )
        nats_server.stop()
        wait_until(
            lambda: own(app)["omni_dashboard_nats_connected"] == 0,
            "the bridge to report NATS down",
        )
    finally:
        app.extensions["omni_dashboard"].live.stop()


def test_rollup_families(pair):
    """Each refresh this process ran is in the histogram; the lag is now - watermark."""
    pair.clear(NOW)
    rs.write(pair.engine, events=[rs.event_row(NOW - timedelta(hours=5), rs.SAMPLE_EVENT)])
    before = own(pair.on)
    assert "omni_dashboard_rollups_watermark_lag_seconds" not in before  # nothing rolled yet
    runs = before["omni_dashboard_rollups_refresh_seconds_count"]
    pair.rollups.refresh()
    pair.clock.now = NOW + timedelta(minutes=50)
    after = own(pair.on)
    assert after["omni_dashboard_rollups_refresh_seconds_count"] == runs + 1
    assert after[("omni_dashboard_rollups_refresh_seconds_bucket", math.inf)] == runs + 1
    mark = pair.watermark().watermark_slot
    lag = (pair.clock.now - slot_time(mark)).total_seconds()
    assert after["omni_dashboard_rollups_watermark_lag_seconds"] == lag
    assert lag == Fraction(50 * 60 + rs.HORIZON.seconds)
    assert "omni_dashboard_rollups_watermark_lag_seconds" not in own(pair.off)


def test_the_collector_describes_every_family_it_collects(pair):
    """Registering describes the families without reading, so that a registry refuses a
    name taken twice; every family a scrape yields is among them."""
    pair.clear(NOW)
    rs.write(pair.engine, events=[rs.event_row(NOW - timedelta(hours=5), rs.SAMPLE_EVENT)])
    pair.rollups.refresh()
    collector = DashboardCollector(pair.on.extensions["omni_dashboard"])
    described = [family.name for family in collector.describe()]
    collected = {family.name for family in collector.collect()}
    assert "omni_dashboard_rollups_watermark_lag_seconds" in collected
    assert collected <= set(described) and len(described) == len(set(described))
    assert all(not family.samples for family in collector.describe())
    registry = CollectorRegistry()
    Counter("omni_events", "a family of the host's own", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(collector)
