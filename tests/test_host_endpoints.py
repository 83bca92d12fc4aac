"""The reference host's pre-enhancement endpoints, checked against the plain-Python oracle."""

import random
from datetime import timedelta

import pytest

from host_example.seed import SeedPlan

from . import oracle
from .conftest import API_KEY, NOW, build_app, get_json
from .data import seeded

BARE = {"OMNI_LOAD_PLUGINS": False}


@pytest.fixture(scope="module")
def world(db_url):
    app = build_app(db_url, **BARE)
    data = seeded(app.extensions["omni_host"].engine, SeedPlan(events=3000, days=10, now=NOW))
    return app, data


def test_event_metrics_match_oracle(world):
    app, data = world
    status, body = get_json(app.test_client(), "/api/v2/event-ops/metrics")
    assert status == 200
    expected = oracle.event_metrics(data.events, data.dead_letters, data.payloads, NOW)
    assert body == {"data": expected}
    assert body["data"]["failed"] > 0 and body["data"]["p95ProcessingTimeMs"] is not None


def _iso(moment):
    return moment.isoformat() + "Z"


def test_analytics_windows_match_oracle(world):
    app, data = world
    client = app.test_client()
    rng = random.Random(7)
    instance = data.instances[0]["id"]
    cases = [
        ("", NOW - timedelta(hours=24), None, None),
        ("?allTime=true", None, None, None),
        (f"?allTime=true&instanceId={instance}", None, None, instance),
    ]
    for _ in range(6):
        since = NOW - timedelta(minutes=rng.randrange(0, 15 * 24 * 60))
        until = since + timedelta(minutes=rng.randrange(0, 5 * 24 * 60))
        cases.append((f"?since={_iso(since)}&until={_iso(until)}", since, until, None))
    # An event exactly on both edges of a window is inside it.
    edge = data.events[0]["received_at"]
    cases.append((f"?since={_iso(edge)}&until={_iso(edge)}", edge, edge, None))
    # Offsets are honoured: 14:00+02:00 is 12:00 UTC.
    cases.append(("?since=2026-03-09T14:00:00%2B02:00", NOW - timedelta(hours=24), None, None))
    for query, since, until, inst in cases:
        status, body = get_json(client, "/api/v2/events/analytics" + query)
        assert status == 200, query
        expected = oracle.event_analytics(oracle.in_window(data.events, since, until, inst))
        assert body == expected, query
    assert body["totalMessages"] > 0


def test_dead_letter_stats_compute_retrying(world):
    app, data = world
    status, body = get_json(app.test_client(), "/api/v2/dead-letters/stats")
    assert status == 200
    assert body == {"data": oracle.dead_letter_stats(data.dead_letters)}
    assert body["data"]["retrying"] > 0


@pytest.mark.parametrize("filters", [{}, {"status": "failed"}, {"status": "skipped"}, "automation"])
def test_automation_logs_pages_return_every_row_once(world, filters):
    app, data = world
    client = app.test_client()
    if filters == "automation":
        filters = {"automationId": str(data.logs[0]["automation_id"])}
    expected = oracle.automation_log_order(
        data.logs,
        status=filters.get("status"),
        automation_id=data.logs[0]["automation_id"] if "automationId" in filters else None,
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 17, **filters, **({"cursor": cursor} if cursor else {})}
        status, body = get_json(client, "/api/v2/automation-logs", query_string=params)
        assert status == 200
        seen += [item["id"] for item in body["items"]]
        assert len(body["items"]) <= 17
        if not body["meta"]["hasMore"]:
            assert body["meta"]["cursor"] is None
            break
        cursor = body["meta"]["cursor"]
    assert seen == expected
    assert len(expected) > 17


def test_automation_logs_items_have_omni_shape(world):
    app, data = world
    status, body = get_json(app.test_client(), "/api/v2/automation-logs?limit=1")
    assert status == 200
    item = body["items"][0]
    newest = max(data.logs, key=lambda log: (log["created_at"], log["id"]))
    assert item["id"] == str(newest["id"])
    assert item["actionsExecuted"] == newest["actions_executed"]
    assert item["createdAt"] == newest["created_at"].isoformat(timespec="milliseconds") + "Z"
    assert set(item) == {
        "id",
        "automationId",
        "eventId",
        "status",
        "conditionsMatched",
        "actionsExecuted",
        "error",
        "executionTimeMs",
        "createdAt",
    }


def test_automation_metrics_engine_states(db_url):
    running = build_app(db_url, **BARE)
    stopped = build_app(db_url, OMNI_AUTOMATIONS_RUNNING=False, **BARE)
    running.extensions["omni_host"].automation_engine.queues["inst-1"] = {
        "activeCount": 2,
        "pendingCount": 5,
    }
    assert get_json(running.test_client(), "/api/v2/automation-metrics") == (
        200,
        {
            "running": True,
            "instanceQueues": [{"instanceId": "inst-1", "activeCount": 2, "pendingCount": 5}],
        },
    )
    assert get_json(stopped.test_client(), "/api/v2/automation-metrics") == (
        200,
        {"running": False, "message": "Automation engine not running"},
    )


def test_health_reports_instances_without_auth(world):
    app, data = world
    response = app.test_client().get("/api/v2/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "healthy"
    assert body["instances"] == oracle.instance_summary(data.instances)
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["nats"] == {"status": "disabled", "details": {"connected": False}}
    assert body["timestamp"] == "2026-03-10T12:00:00.000Z"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v2/events/analytics?since=yesterday", "since"),
        ("/api/v2/events/analytics?until=2026-13-01", "until"),
        ("/api/v2/events/analytics?instanceId=not-a-uuid", "instanceId"),
        ("/api/v2/events/analytics?allTime=maybe", "allTime"),
        (
            "/api/v2/events/analytics?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z",
            "since",
        ),
        ("/api/v2/automation-logs?limit=0", "limit"),
        ("/api/v2/automation-logs?limit=101", "limit"),
        ("/api/v2/automation-logs?limit=ten", "limit"),
        ("/api/v2/automation-logs?cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("/api/v2/automation-logs?status=exploded", "status"),
        ("/api/v2/automation-logs?automationId=42", "automationId"),
    ],
)
def test_bad_input_gets_validation_envelope_naming_the_field(world, url, field):
    app, _ = world
    status, body = get_json(app.test_client(), url)
    assert status == 422
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in body["error"]["details"]
    assert field in body["error"]["message"]


def test_api_key_header_or_query_and_401_envelope(world):
    app, _ = world
    client = app.test_client()
    keyed = client.get("/api/v2/event-ops/metrics", headers={"x-api-key": API_KEY})
    assert keyed.status_code == 200
    assert client.get(f"/api/v2/event-ops/metrics?api_key={API_KEY}").status_code == 200
    for response in (
        client.get("/api/v2/event-ops/metrics"),
        client.get("/api/v2/dead-letters/stats", headers={"x-api-key": "wrong"}),
        client.get("/api/v2/automation-logs?api_key=wrong"),
    ):
        assert response.status_code == 401
        assert response.get_json() == {
            "error": {"code": "UNAUTHORIZED", "message": "Missing or invalid API key"}
        }
    assert client.get("/openapi.json").status_code == 200


def test_database_down_is_503_with_envelope_and_degraded_health():
    app = build_app("postgresql://nobody@127.0.0.1:1/none", **BARE)
    client = app.test_client()
    status, body = get_json(client, "/api/v2/event-ops/metrics")
    assert status == 503
    assert body == {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Database unavailable"}}
    response = client.get("/api/v2/health")
    assert response.status_code == 503
    health = response.get_json()
    assert health["status"] == "degraded"
    assert health["checks"]["database"] == {"status": "error", "latency": None}
    assert "instances" not in health
