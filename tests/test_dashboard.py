"""GET /api/v2/dashboard: equality with the individual endpoints, snapshot, ETag, cache."""

import dataclasses
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert

from host_example.seed import SeedPlan
from host_example.tables import omni_events
from omni_dashboard_plugin import cache as cache_module

from .conftest import API_KEY, NOW, Clock, build_app, get_json
from .data import seeded

ZONES = ["UTC", "Asia/Kathmandu", "America/New_York"]


@pytest.fixture(scope="module")
def app(db_url):
    app = build_app(db_url, OMNI_DASHBOARD_CACHE_SECONDS=0)
    seeded(app.extensions["omni_host"].engine, SeedPlan(events=2000, days=3, now=NOW))
    return app


def add_events(engine, count, at=NOW, channel="discord"):
    with engine.begin() as conn:
        conn.execute(
            insert(omni_events),
            [
                {
                    "id": uuid.uuid4(),
                    "channel": channel,
                    "event_type": "message.received",
                    "direction": "inbound",
                    "status": "failed",
                    "received_at": at,
                }
                for _ in range(count)
            ],
        )


@pytest.mark.parametrize("zone", ZONES)
def test_every_number_equals_the_individual_endpoints(app, zone):
    client = app.test_client()
    status, summary = get_json(client, f"/api/v2/dashboard?timezone={zone}")
    assert status == 200
    _, metrics = get_json(client, "/api/v2/event-ops/metrics")
    metrics = metrics["data"]
    _, analytics = get_json(client, f"/api/v2/events/analytics?timezone={zone}")
    _, dead = get_json(client, "/api/v2/dead-letters/stats")
    _, automations = get_json(client, "/api/v2/automation-metrics")
    health = client.get("/api/v2/health").get_json()

    assert summary["events"] == {
        "total": metrics["totalEvents"],
        "last24h": metrics["eventsLast24h"],
        "failed24h": analytics["failedMessages"],
        "lastHour": metrics["eventsLastHour"],
        "perHour": metrics["eventsPerHour"],
        "perMinute": metrics["eventsPerMinute"],
        "failureRate": metrics["failureRate"],
        "timeline": analytics["timeline"],
        "byChannel": analytics["byChannel"],
        "byDirection": analytics["byDirection"],
    }
    assert analytics["timelineGranularity"] == "hourly" and len(analytics["timeline"]) == 25
    assert summary["deadLetters"] == {
        "pending": dead["data"]["pending"],
        "total": dead["data"]["total"],
    }
    assert summary["automations"] == {
        "running": automations["running"],
        "totalExecutions": automations["totalExecutions"],
        "successRate": automations["successRate"],
    }
    assert summary["instances"] == health["instances"]
    assert summary["system"] == {
        "status": health["status"],
        "uptime": health["uptime"],
        "dbLatency": health["checks"]["database"]["latency"],
        "natsConnected": health["checks"]["nats"]["details"]["connected"],
    }
    assert summary["events"]["total"] > 0 and summary["deadLetters"]["total"] > 0


def test_one_snapshot_even_when_rows_arrive_mid_request(db_url):
    app = build_app(db_url, OMNI_DASHBOARD_CACHE_SECONDS=0)
    engine = app.extensions["omni_host"].engine
    seeded(engine, SeedPlan(events=300, days=1, now=NOW))
    dashboard = app.extensions["omni_dashboard"]
    breakdowns = dashboard.registry.enabled["breakdowns"]

    def late_writer(ctx):
        add_events(engine, 7)  # committed by another connection, mid-summary
        return breakdowns.dashboard.compute(ctx)

    part = dataclasses.replace(breakdowns.dashboard, compute=late_writer)
    dashboard.registry.enabled["breakdowns"] = dataclasses.replace(breakdowns, dashboard=part)
    status, summary = get_json(app.test_client(), "/api/v2/dashboard")
    assert status == 200
    events = summary["events"]
    assert sum(events["byChannel"].values()) == events["last24h"] == events["total"]
    assert sum(b["count"] for b in events["timeline"]) == events["last24h"]
    dashboard.registry.enabled["breakdowns"] = breakdowns
    _, after = get_json(app.test_client(), "/api/v2/dashboard")
    assert after["events"]["total"] == events["total"] + 7


def test_etag_and_304(app):
    client = app.test_client()
    first = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY})
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    again = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other_zone = client.get(
        "/api/v2/dashboard?timezone=Asia/Kolkata",
        headers={"x-api-key": API_KEY, "If-None-Match": etag},
    )
    assert other_zone.status_code == 200 and other_zone.headers["ETag"] != etag


def test_a_30_second_poll_of_an_unchanged_system_gets_304(tmp_path):
    clock = Clock()  # a database of its own: every row is placed away from window edges
    app = build_app(
        f"sqlite:///{tmp_path / 'poll.db'}", OMNI_CLOCK=clock, OMNI_DASHBOARD_CACHE_SECONDS=0
    )
    engine = app.extensions["omni_host"].engine
    add_events(engine, 5, at=NOW - timedelta(minutes=10))  # far from every window's edge
    add_events(engine, 3, at=NOW - timedelta(days=3))
    client = app.test_client()
    first = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY})
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    clock.now = NOW + timedelta(seconds=30)  # uptime moves; the data does not
    again = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    add_events(engine, 1, at=NOW)  # new data: a new tag
    changed = client.get("/api/v2/dashboard", headers={"x-api-key": API_KEY, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["system"]["uptime"] == 30


class FakeMonotonic:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def cached_app(db_url, monkeypatch, events=100):
    clock = FakeMonotonic()
    monkeypatch.setattr(cache_module, "monotonic", clock)
    app = build_app(db_url, OMNI_DASHBOARD_CACHE_SECONDS=5)
    engine = app.extensions["omni_host"].engine
    seeded(engine, SeedPlan(events=events, days=1, now=NOW))
    return app, engine, clock


def test_cache_serves_within_the_interval_then_recomputes(db_url, monkeypatch):
    app, engine, clock = cached_app(db_url, monkeypatch)
    client = app.test_client()
    _, first = get_json(client, "/api/v2/dashboard")
    add_events(engine, 3)
    clock.now += 4.9
    _, cached = get_json(client, "/api/v2/dashboard")
    assert cached == first
    clock.now += 0.2
    _, fresh = get_json(client, "/api/v2/dashboard")
    assert fresh["events"]["total"] == first["events"]["total"] + 3


def test_cache_never_serves_other_arguments_or_other_keys(db_url, monkeypatch):
    app, engine, _ = cached_app(db_url, monkeypatch)
    client = app.test_client()
    _, utc = get_json(client, "/api/v2/dashboard")
    _, nepal = get_json(client, "/api/v2/dashboard?timezone=Asia/Kathmandu")
    assert utc["events"]["timeline"][0]["bucket"].endswith("+00:00")
    assert nepal["events"]["timeline"][0]["bucket"].endswith("+05:45")
    # A host with scoped keys: a second key must not see the first key's cached answer.
    add_events(engine, 2)
    app.config["OMNI_API_KEY"] = "another-key"
    second = client.get("/api/v2/dashboard", headers={"x-api-key": "another-key"}).get_json()
    assert second["events"]["total"] == utc["events"]["total"] + 2


def test_a_hundred_concurrent_pollers_cost_one_computation(db_url, monkeypatch):
    app, _, _ = cached_app(db_url, monkeypatch)
    dashboard = app.extensions["omni_dashboard"]
    rates = dashboard.registry.enabled["rates"]
    calls = []
    gate = threading.Event()

    def slow_counted(ctx):
        calls.append(1)
        gate.wait(2)
        return rates.dashboard.compute(ctx)

    part = dataclasses.replace(rates.dashboard, compute=slow_counted)
    dashboard.registry.enabled["rates"] = dataclasses.replace(rates, dashboard=part)
    results = []

    def poll():
        results.append(get_json(app.test_client(), "/api/v2/dashboard"))

    threads = [threading.Thread(target=poll) for _ in range(100)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 100 and all(r == results[0] for r in results)
    assert results[0][0] == 200


@pytest.mark.parametrize(
    ("providers", "absent_events", "absent_automations", "has_timezone"),
    [
        ("rates,breakdowns", {"timeline"}, {"totalExecutions", "successRate"}, False),
        ("timeline,automations", {"lastHour", "perHour", "perMinute", "byChannel"}, set(), True),
        # No provider of the dashboard's parts: the core numbers alone.
        ("filters", {"lastHour", "timeline", "byChannel", "byDirection"}, {"successRate"}, False),
    ],
)
def test_schema_tells_the_truth_when_providers_are_off(
    db_url, providers, absent_events, absent_automations, has_timezone
):
    app = build_app(db_url, OMNI_DASHBOARD_PROVIDERS=providers)
    client = app.test_client()
    status, body = get_json(client, "/api/v2/dashboard")
    assert status == 200
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    events_props = set(schemas["DashboardEvents"]["properties"])
    automations_props = set(schemas["DashboardAutomations"]["properties"])
    assert set(body["events"]) == events_props
    assert set(body["automations"]) == automations_props
    assert not absent_events & events_props
    assert not absent_automations & automations_props
    params = {p["name"] for p in spec["paths"]["/dashboard"]["get"].get("parameters", [])}
    assert ("timezone" in params) == has_timezone


def test_providers_none_serves_no_dashboard(db_url):
    """``none`` adds nothing, the dashboard route included (docs/host-integration.md)."""
    app = build_app(db_url, OMNI_DASHBOARD_PROVIDERS="none")
    client = app.test_client()
    assert get_json(client, "/api/v2/dashboard")[0] == 404
    spec = client.get("/openapi.json").get_json()
    assert (
        "/dashboard" not in spec["paths"] and "DashboardEvents" not in spec["components"]["schemas"]
    )


def test_bad_timezone_and_missing_key(app):
    client = app.test_client()
    status, body = get_json(client, "/api/v2/dashboard?timezone=Atlantis/Capital")
    assert status == 422 and "timezone" in body["error"]["details"]
    assert client.get("/api/v2/dashboard").status_code == 401


def test_summary_timeline_covers_the_last_24_hours(app):
    _, summary = get_json(app.test_client(), "/api/v2/dashboard")
    first = summary["events"]["timeline"][0]["bucket"]
    assert first == (NOW - timedelta(hours=24)).isoformat() + "+00:00"
