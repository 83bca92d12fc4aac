"""The host contract, against every host (the reference host and the second one), on SQLite
and PostgreSQL, rollups off and on: additive, invisible when disabled, exact.

Never loosen these tests: they are what "additive only" means for a host the plugin has
never seen.
"""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from .conftest import ROLLUPS_OFF, ROLLUPS_ON
from .data import NOW, analytics, by_channel, in_window
from .spec import missing_required, superset_problems

# Slow: every host on both databases, rollups on and off: seeds four databases.
pytestmark = pytest.mark.slow

ROLLUPS = {"off": ROLLUPS_OFF, "on": ROLLUPS_ON}
PLUGIN_ROUTES = (
    "/api/v2/dashboard",
    "/api/v2/dashboard/metrics",
    "/api/v2/events/stream",
    "/api/v2/events/ws",
)
FIELDS = tuple(analytics([]))  # Omni's analytics fields, which both hosts serve
HEALTH = ("/status", "/api/v2/health")  # latencies of the moment: compared by test_compat


def _iso(moment) -> str:
    return moment.isoformat() + "Z"


def _body(raw: bytes):
    return json.loads(raw)


def _host_fields(extended, bare):
    """``extended`` keeping only the keys ``bare`` has, at every level, in its order."""
    if isinstance(bare, dict) and isinstance(extended, dict):
        return {k: _host_fields(v, bare[k]) for k, v in extended.items() if k in bare}
    return extended


@pytest.mark.parametrize("rollups", ["off", "on"])
def test_the_hosts_fields_are_unchanged_with_every_provider(world, rollups):
    """Every response of the host keeps each of its fields, value and order, with every
    provider on: providers only add keys (and a field of the host's own, such as the
    second host's myTeamNote, is never dropped, whether rollups are on or off)."""
    bare, full = world.bare(), world.app(ROLLUPS[rollups], OMNI_DASHBOARD_PROVIDERS="all")
    for path in world.host.requests:
        theirs, ours = world.get(bare, path), world.get(full, path)
        assert ours[:2] == theirs[:2], path
        if theirs[0] != 200 or theirs[1] != "application/json":
            assert ours == theirs, path
            continue
        kept = _host_fields(_body(ours[2]), _body(theirs[2]))
        assert json.dumps(kept) == json.dumps(_body(theirs[2])), path
    metrics = world.host.metrics_of(_body(world.get(full, world.host.metrics)[2]))
    assert world.host.own_metrics_fields <= set(metrics)
    assert "eventsLastHour" in metrics  # the rates provider's


def test_providers_none_is_the_bare_host_byte_for_byte(world):
    """``none`` is invisible: every response, the plugin's routes (404s) and the OpenAPI
    document are exactly those of the host with no plugin installed."""
    bare, off = world.bare(), world.app(OMNI_DASHBOARD_PROVIDERS="none")
    for path in (*world.host.requests, *PLUGIN_ROUTES, "/openapi.json"):
        if path in HEALTH:
            continue
        assert world.get(off, path) == world.get(bare, path), path


def test_the_document_only_gains(world):
    """With every provider on, the OpenAPI document is a superset of the bare host's."""
    bare = _body(world.get(world.bare(), "/openapi.json")[2])
    full = _body(world.get(world.app(OMNI_DASHBOARD_PROVIDERS="all"), "/openapi.json")[2])
    assert superset_problems(bare, full) == []
    assert {"/dashboard", "/api/v2/dashboard"} & set(full["paths"])


def _without_system(raw: bytes):
    body = _body(raw)
    body.pop("system", None)  # the host's uptime and latency of the moment
    return body


def test_rollups_answer_as_raw_reads(world):
    """Rollups change the cost, never a byte: every response of the host and of the
    dashboard is the same with rollups on (refreshed) as with raw reads."""
    off, on = world.app(ROLLUPS_OFF), world.app(ROLLUPS_ON)
    assert on.extensions["omni_dashboard"].rollups.active
    since = _iso(NOW - timedelta(days=4))
    paths = [
        *world.host.requests,
        f"{world.host.analytics}?since={since}&channel=discord",
        f"{world.host.analytics}?since={since}&compare=previous_week&timezone=Asia/Kolkata",
    ]
    for path in paths:
        if path not in HEALTH:
            assert world.get(on, path) == world.get(off, path), path
    for query in ("", "?channel=slack", "?compare=previous_period"):
        ours, theirs = (
            world.get(on, "/api/v2/dashboard" + query),
            world.get(off, "/api/v2/dashboard" + query),
        )
        assert ours[0] == theirs[0] == 200
        assert _without_system(ours[2]) == _without_system(theirs[2]), query


@pytest.mark.parametrize("rollups", ["off", "on"])
def test_channel_narrows_every_field(world, rollups):
    """``channel`` narrows the host's own fields as well as the providers', exactly as a
    plain count of the matching events says (with ``instanceId`` too)."""
    app = world.app(ROLLUPS[rollups])
    since, until = NOW - timedelta(days=3), NOW - timedelta(minutes=20)
    events = world.data.events
    instance = next(e for e in events if e["instance_id"] is not None)
    cases = [
        ({"channel": "discord"}, {"channel": "discord"}),
        ({"channel": "nowhere"}, {"channel": "nowhere"}),
        (
            {"channel": instance["channel"], "instanceId": str(instance["instance_id"])},
            {"channel": instance["channel"], "instance_id": instance["instance_id"]},
        ),
    ]
    for query, match in cases:
        args = {"since": _iso(since), "until": _iso(until), **query}
        status, _, raw = world.get(app, f"{world.host.analytics}?{urlencode(args)}")
        assert status == 200, raw
        body = _body(raw)
        chosen = in_window(events, since, until, **match)
        assert {name: body[name] for name in FIELDS} == analytics(chosen), query
        assert body["byChannel"] == by_channel(chosen)
        assert sum(bucket["count"] for bucket in body["timeline"]) == len(chosen)
    assert len(in_window(events, since, until, channel="discord")) > 0


@pytest.mark.parametrize("rollups", ["off", "on"])
@pytest.mark.parametrize("compare", ["previous_period", "previous_week"])
def test_compare_counts_the_earlier_window(world, rollups, compare):
    """``compare`` adds the numbers of the earlier window, counted as docs/api.md says."""
    app = world.app(ROLLUPS[rollups])
    since, until = NOW - timedelta(days=2), NOW - timedelta(days=1)
    args = {"since": _iso(since), "until": _iso(until), "compare": compare}
    status, _, raw = world.get(app, f"{world.host.analytics}?{urlencode(args)}")
    assert status == 200, raw
    comparison = _body(raw)["comparison"]
    events = world.data.events
    if compare == "previous_period":  # [since - L, since)
        chosen = [e for e in in_window(events, since - (until - since)) if e["received_at"] < since]
    else:
        chosen = in_window(events, since - timedelta(days=7), until - timedelta(days=7))
    expected = analytics(chosen)
    for name in ("totalMessages", "successfulMessages", "failedMessages", "successRate"):
        assert comparison[name] == expected[name], name
    assert comparison["byChannel"] == by_channel(chosen)
    assert sum(bucket["count"] for bucket in comparison["timeline"]) == len(chosen) > 0


def _queries(parameters: set, instance_id) -> list[str]:
    samples = {
        "channel": "discord",
        "compare": "previous_period",
        "since": _iso(NOW - timedelta(days=2)),
        "instanceId": str(instance_id),
        "timezone": "Asia/Kolkata",
        "granularity": "daily",
        "allTime": "true",
        "limit": "5",
    }
    chosen = {name: value for name, value in samples.items() if name in parameters}
    singles = [urlencode({name: value}) for name, value in chosen.items()]
    return ["", *singles, urlencode({k: v for k, v in chosen.items() if k != "allTime"})]


@pytest.mark.parametrize("rollups", ["off", "on"])
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"channel": "discord"},
        {"compare": "previous_period"},
        {"until": (NOW - timedelta(days=2)).isoformat()},  # no offset: naive, as UTC
    ],
)
def test_an_inverted_window_is_a_422_naming_since(world, rollups, query):
    """``since`` after ``until`` is an empty window the providers refuse: 422 in the
    host's envelope, naming ``since``, never a 200 with empty numbers nor a 500."""
    app = world.app(ROLLUPS[rollups], OMNI_DASHBOARD_PROVIDERS="all")
    window = {"since": _iso(NOW - timedelta(days=1)), "until": _iso(NOW - timedelta(days=2))}
    status, kind, raw = world.get(app, f"{world.host.analytics}?{urlencode(window | query)}")
    assert (status, kind) == (422, "application/json"), raw
    body = _body(raw)
    named = body["error"]["details"] if "error" in body else body["errors"]["query"]
    assert list(named) == ["since"]


@pytest.mark.parametrize("rollups", ["off", "on"])
def test_every_200_carries_every_field_its_schema_requires(world, rollups):
    """For every GET route of the document, with and without each argument it declares:
    no 5xx, and a JSON 200 lacks no field its schema marks required (at any depth)."""
    app = world.app(ROLLUPS[rollups])
    spec = _body(world.get(app, "/openapi.json")[2])
    prefix = spec.get("servers", [{"url": ""}])[0]["url"]
    instance_id = world.data.instances[0]["id"]
    checked = 0
    for path, item in spec["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        content = operation["responses"].get("200", {}).get("content", {})
        if "text/event-stream" in content:
            continue  # a stream does not end; the live-feed tests read it
        parameters = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"}
        for query in _queries(parameters, instance_id):
            status, kind, raw = world.get(app, f"{prefix}{path}?{query}")
            assert status < 500, (path, query, raw)
            if status == 200 and kind == "application/json":
                schema = content["application/json"]["schema"]
                assert missing_required(spec, schema, _body(raw)) == [], (path, query)
                checked += 1
    assert checked >= 8


def test_a_published_message_reaches_the_stream(world):
    """``live.publish`` with Omni's message shape (docs/host-integration.md) reaches an
    open SSE stream as ``event.received``."""
    app = world.app(OMNI_DASHBOARD_STREAM_WRITER="thread", OMNI_DASHBOARD_STREAM_HEARTBEAT=1)
    live = app.extensions["omni_dashboard"].live
    response = app.test_client().get(
        "/api/v2/events/stream", headers=world.host.headers, buffered=False
    )
    try:
        assert response.status_code == 200
        blocks = iter(response.response)
        assert b"event: connected" in next(blocks)
        live.publish(
            "message.received.discord.i-1",
            {"id": "m-29", "type": "message.received", "timestamp": 1773144000000},
        )
        seen = b""
        for _ in range(30):  # a block or a heartbeat each second at most: a hang's ceiling
            seen += next(blocks)
            if b"event.received" in seen:
                break
        data = json.loads(seen.split(b"data: ", 1)[1].split(b"\n", 1)[0])
        assert data == {
            "id": "m-29",
            "eventType": "message.received",
            "instanceId": "i-1",
            "channel": "discord",
            "receivedAt": "2026-03-10T12:00:00.000Z",
            "direction": "inbound",
        }
    finally:
        response.close()
        live.stop()
