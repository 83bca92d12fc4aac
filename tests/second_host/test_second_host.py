"""What a host the plugin has never seen gets by default: the providers it can serve, its
own payloads kept, missing tables disabling what reads them, psycopg 3 from a plain URL."""

import logging

import pytest
from flask import Flask
from marshmallow import fields
from sqlalchemy import Column, MetaData, Table, create_engine, insert

from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.host import Dashboard, Endpoint

from . import tables
from .app import create_app
from .conftest import ROLLUPS_ON
from .data import NOW, dataset
from .hosts import KEY
from .schemas import Analytics, AnalyticsArgs, Metrics
from .spec import missing_required

# Slow: seeds the second host's databases on both drivers.
pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {KEY}"}
# The providers of the endpoints the second host serves, named (not ``all``).
SERVED = "rates,timeline,breakdowns,filters,comparison"


def _team(url, **settings):
    return create_app(url, token=KEY, clock=lambda: NOW, settings=settings)


@pytest.fixture(scope="module")
def scratch(databases, database):
    """A database of each kind for the tests that leave tables out."""
    return databases.fresh(database)


@pytest.fixture
def fresh(scratch):
    """``scratch``, emptied."""
    engine = create_engine(scratch)
    found = MetaData()
    found.reflect(engine)
    found.drop_all(engine)
    engine.dispose()
    return scratch


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_postgresql_runs_on_both_drivers(world):
    """The second host's plain postgresql:// URL is psycopg 3 (the `postgres` extra's);
    the reference host pins its URLs to psycopg2."""
    engine = world.app().extensions["omni_dashboard"].engine
    drivers = {"second": "psycopg", "reference": "psycopg2"}
    expected = drivers[world.host.name] if engine.dialect.name == "postgresql" else "pysqlite"
    assert engine.dialect.driver == expected


@pytest.mark.parametrize("host", ["second"], indirect=True)
def test_all_enables_what_the_host_serves_and_says_what_it_left_out(world, caplog):
    """The default ``all`` starts on a host without /automation-metrics: the automations
    provider is left out with a warning that says why; named explicitly, it stops start-up."""
    app = world.app({})
    registry = app.extensions["omni_dashboard"].registry
    assert set(registry.enabled) == set(SERVED.split(","))
    [left_out] = [w for w in _warnings(caplog) if "'automations'" in w]
    assert "automation-metrics" in left_out and "does not serve" in left_out
    with pytest.raises(ConfigError, match=r"'automations'.*automation-metrics.*does not serve"):
        world.app({}, OMNI_DASHBOARD_PROVIDERS="rates,automations")


@pytest.mark.parametrize("host", ["second"], indirect=True)
def test_the_hosts_own_payload_is_never_replaced(world, caplog):
    """An /event-ops/metrics with a field of the host's own is computed by the host even
    with rollups on: the plugin's computation of Omni's payload does not stand in for it."""
    caplog.set_level(logging.INFO, "omni_dashboard_plugin")
    app = world.app(ROLLUPS_ON)
    dashboard = app.extensions["omni_dashboard"]
    assert dashboard.rollups.active
    assert "event-ops.metrics" not in dashboard.registry.accelerators
    assert "events.analytics" in dashboard.registry.accelerators  # Omni's payload: computed
    assert any("myTeamNote" in r.getMessage() for r in caplog.records)
    body = app.test_client().get("/event-ops/metrics", headers=HEADERS).get_json()
    events = world.data.events
    assert body["myTeamNote"].startswith("busiest channel: ")
    assert body["totalEvents"] == len(events)
    assert body["failed"] == sum(e["status"] == "failed" for e in events)


def test_a_filter_of_a_payload_with_the_hosts_own_fields_is_left_out():
    """``channel`` could narrow only the fields the plugin computes: on an analytics
    payload with a field of the host's own, ``filters`` is not enabled (named explicitly,
    start-up stops naming the field), so no host field is dropped under the filter."""

    class Noted(Analytics):
        teamNote = fields.String(required=True)

    engine = create_engine("sqlite://")
    tables.metadata.create_all(engine)

    def dashboard(providers):
        app = Flask("noted")
        app.config["OMNI_DASHBOARD_PROVIDERS"] = providers
        found = Dashboard(
            engine,
            {
                "events.analytics": Endpoint(Noted, AnalyticsArgs),
                "event-ops.metrics": Endpoint(Metrics),
            },
        )
        found.init_app(app)
        return found

    assert "filters" not in dashboard("all").registry.enabled
    assert "timeline" in dashboard("all").registry.enabled
    with pytest.raises(ConfigError) as info:
        dashboard("filters")
    assert "teamNote" in str(info.value) and "OMNI_DASHBOARD_PROVIDERS" in str(info.value)


def _partial(url, *, without=(), columns=None) -> None:
    """The team's tables but ``without`` (and ``omni_events`` with only ``columns``),
    holding the dataset's rows."""
    engine = create_engine(url)
    kept = {name: t for name, t in tables.metadata.tables.items() if name not in without}
    if columns is not None:
        events = tables.omni_events
        kept["omni_events"] = Table(
            "omni_events",
            MetaData(),
            *(
                Column(c.name, c.type, primary_key=c.primary_key)
                for c in events.columns
                if c.name in columns
            ),
        )
    data = dataset(events=120)
    rows = {
        "instances": data.instances,
        "omni_events": [
            {k: v for k, v in row.items() if k in kept["omni_events"].c} for row in data.events
        ],
        "dead_letter_events": data.dead_letters,
        "event_payloads": data.payloads,
        "automations": data.automations,
        "automation_logs": data.logs,
    }
    with engine.begin() as conn:
        for name, table in kept.items():
            table.create(conn)
            conn.execute(insert(table), rows[name])
    engine.dispose()


def _every_route_answers(app, skip=()) -> set[str]:
    """GET every route of the document but ``skip``: no 5xx, no required field missing;
    returns the document's paths."""
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        operation = item.get("get", {})
        content = operation.get("responses", {}).get("200", {}).get("content", {})
        if "text/event-stream" in content or not operation or path in skip:
            continue
        for query in ("", "?channel=discord&compare=previous_period"):
            response = client.get(path + query, headers=HEADERS)
            assert response.status_code < 500, (path, response.get_data())
            if response.status_code == 200 and response.is_json:
                schema = content["application/json"]["schema"]
                assert missing_required(spec, schema, response.get_json()) == [], path
    return set(spec["paths"])


def test_missing_tables_disable_what_reads_them(fresh, caplog):
    """Without automation_logs, automations and event_payloads the app starts, warns once
    per table naming what it disables, and never answers 500; the Prometheus route leaves
    out the families of the missing table; the rollups stay off."""
    _partial(fresh, without={"automation_logs", "automations", "event_payloads"})
    app = _team(fresh, OMNI_DASHBOARD_ROLLUPS="auto", OMNI_DASHBOARD_PROVIDERS=SERVED)
    assert "/api/v2/dashboard" in _every_route_answers(app)  # no 500, nothing missing
    warned = [w for w in _warnings(caplog) if w.startswith("table ")]
    assert sorted(w.split()[1] for w in warned) == [
        "automation_logs",
        "automations",
        "event_payloads",
    ]
    assert all("is missing" in w and "rollups" in w for w in warned)
    assert "Prometheus" in next(w for w in warned if "automation_logs" in w)
    assert not app.extensions["omni_dashboard"].rollups.active
    scrape = app.test_client().get("/api/v2/dashboard/metrics", headers=HEADERS)
    assert scrape.status_code == 200
    text = scrape.get_data(as_text=True)
    assert "omni_events_total" in text and "omni_automation_executions" not in text
    with pytest.raises(ConfigError, match=r"OMNI_DASHBOARD_ROLLUPS=on.*automation_logs"):
        _team(fresh, OMNI_DASHBOARD_ROLLUPS="on")
    with pytest.raises(
        ConfigError, match=r"MISSING_TABLES=error.*table automation_logs is missing"
    ):
        _team(fresh, OMNI_DASHBOARD_MISSING_TABLES="error")


def test_a_missing_column_disables_what_reads_its_table(fresh, caplog):
    """omni_events without agent_latency_ms: every event provider, the dashboard and the
    plugin's computation of the host's analytics are off, with one warning naming the
    column, and none of the plugin's routes answers 500 (the team's own analytics reads the
    column: that one is the team's to fix)."""
    columns = {c.name for c in tables.omni_events.columns} - {"agent_latency_ms"}
    _partial(fresh, columns=columns)
    app = _team(fresh, OMNI_DASHBOARD_PROVIDERS="all")
    [warning] = [w for w in _warnings(caplog) if w.startswith("table omni_events")]
    assert "lacks the column(s) agent_latency_ms" in warning and "GET /api/v2/dashboard" in warning
    dashboard = app.extensions["omni_dashboard"]
    assert dashboard.registry.enabled == {}
    assert dashboard.registry.accelerators == {}
    paths = _every_route_answers(app, skip={"/events/analytics"})
    assert "/api/v2/dashboard" not in paths and "/events/analytics" in paths


def test_publish_under_none_is_a_no_op(tmp_path):
    """With ``OMNI_DASHBOARD_PROVIDERS=none`` the feed is off: ``live.publish`` returns
    without starting a hub or a NATS connection (here to a server that is not there)."""
    app = create_app(
        f"sqlite:///{tmp_path / 'team.db'}",
        token=KEY,
        clock=lambda: NOW,
        migrate=True,
        settings={"OMNI_DASHBOARD_PROVIDERS": "none", "OMNI_NATS_URL": "nats://127.0.0.1:9"},
    )
    live = app.extensions["omni_dashboard"].live
    try:
        message = {"id": "m-1", "type": "message.received", "timestamp": 1773144000000}
        assert live.publish("message.received.discord.i-1", message) is None
        assert live._hub is None and live._bridge is None
    finally:
        live.stop()
        app.extensions["omni_dashboard"].engine.dispose()
