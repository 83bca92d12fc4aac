"""rates, timeline and breakdowns against the plain-Python oracle, on SQLite and PostgreSQL."""

import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from host_example.tables import instances, omni_events

from . import event_oracle as oracle
from .conftest import API_KEY, Clock, build_app, examples

CAP = 60
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
)
# Instants a few days after DST changes of the zones above, so windows straddle them.
ANCHORS = (
    datetime(2026, 3, 10, 12, 0),  # New York springs forward on 8 March
    datetime(2026, 3, 30, 23, 59, 30),  # Berlin on 29 March
    datetime(2026, 4, 7, 3, 15),  # Santiago, Lord Howe, Chatham fall back on 5 April
    datetime(2026, 10, 27, 0, 0),  # Berlin falls back on 25 October
    datetime(2026, 11, 3, 6, 45),  # New York on 1 November
)
CHANNELS = ("whatsapp-baileys", "whatsapp-cloud", "discord", "slack", "telegram")
INSTANCE_IDS = [uuid.UUID(int=i + 1) for i in range(3)]


@pytest.fixture(scope="module")
def env(db_url):
    clock = Clock()
    app = build_app(db_url, OMNI_CLOCK=clock, OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS=CAP)
    engine = app.extensions["omni_host"].engine
    with engine.begin() as conn:
        conn.execute(delete(omni_events))
        conn.execute(delete(instances))
        conn.execute(
            insert(instances),
            [
                {"id": i, "name": f"inst-{n}", "channel": "slack"}
                for n, i in enumerate(INSTANCE_IDS)
            ],
        )
    return app, engine, clock


def load(engine, events):
    with engine.begin() as conn:
        conn.execute(delete(omni_events))
        if events:
            conn.execute(
                insert(omni_events),
                [
                    {
                        "id": uuid.uuid4(),
                        "event_type": "message.received",
                        **event,
                    }
                    for event in events
                ],
            )


def iso(moment):
    return moment.isoformat() + "Z"


event_st = st.fixed_dictionaries(
    {
        "offset_ms": st.builds(
            lambda day, ms: day * 86_400_000 + ms, st.integers(-7, 0), st.integers(0, 86_399_999)
        ),
        "channel": st.sampled_from(CHANNELS),
        "direction": st.sampled_from(("inbound", "outbound")),
        "instance": st.sampled_from([None, *INSTANCE_IDS]),
        "status": st.sampled_from(("received", "completed", "failed")),
    }
)
bound_st = st.one_of(
    st.none(),
    st.builds(
        lambda day, ms: day * 86_400_000 + ms, st.integers(-8, 0), st.integers(0, 86_399_999)
    ),
    st.integers(-3_600_000, 3_600_000),
)


def materialize(now, raw_events):
    return [
        {
            "received_at": now + timedelta(milliseconds=e["offset_ms"]),
            "channel": e["channel"],
            "direction": e["direction"],
            "instance_id": e["instance"],
            "status": e["status"],
        }
        for e in raw_events
    ]


def get(client, url, params):
    response = client.get(url, query_string=params, headers={"x-api-key": API_KEY})
    return response.status_code, response.get_json()


@settings(max_examples=examples(1.5))
@given(
    now=st.sampled_from(ANCHORS),
    raw_events=st.lists(event_st, max_size=60),
    since_ms=bound_st,
    until_ms=bound_st,
    all_time=st.booleans(),
    instance=st.sampled_from([None, *INSTANCE_IDS]),
    zone=st.sampled_from(ZONES),
    granularity=st.sampled_from([None, "hourly", "daily"]),
)
def test_providers_match_the_oracle(
    env, now, raw_events, since_ms, until_ms, all_time, instance, zone, granularity
):
    app, engine, clock = env
    clock.now = now
    events = materialize(now, raw_events)
    load(engine, events)
    client = app.test_client()

    status, metrics = get(client, "/api/v2/event-ops/metrics", {})
    assert status == 200
    expected_rates = oracle.rates(events, now)
    assert {k: metrics["data"][k] for k in expected_rates} == expected_rates
    assert metrics["data"]["eventsPerHour"] == metrics["data"]["eventsLast24h"] / 24

    since = now + timedelta(milliseconds=since_ms) if since_ms is not None else None
    until = now + timedelta(milliseconds=until_ms) if until_ms is not None else None
    params = {"allTime": str(all_time).lower(), "timezone": zone}
    if since is not None:
        params["since"] = iso(since)
    if until is not None:
        params["until"] = iso(until)
    if instance is not None:
        params["instanceId"] = str(instance)
    if granularity is not None:
        params["granularity"] = granularity
    status, body = get(client, "/api/v2/events/analytics", params)

    if since is not None and until is not None and since > until:
        assert status == 422 and "since" in body["error"]["details"]
        event("since after until")
        return
    effective_since = since if since is not None or all_time else now - timedelta(hours=24)
    chosen = oracle.window(events, effective_since, until, instance)
    first, last = oracle.span(chosen, effective_since, until, now)
    hourly = oracle.buckets(first, last, zone, "hourly")
    if granularity == "hourly" and len(hourly) > CAP:
        assert status == 422
        assert "granularity" in body["error"]["details"]
        assert "daily" in body["error"]["details"]["granularity"][0]
        event("hourly over the cap refused")
        return
    assert status == 200, body
    expected_granularity = granularity or ("hourly" if len(hourly) <= CAP else "daily")
    assert body["timelineGranularity"] == expected_granularity
    assert body["timelineTimezone"] == zone
    event(f"{expected_granularity} ({'named' if granularity else 'implicit'})")
    event(f"{'non-empty' if chosen else 'empty'} window")
    assert body["timeline"] == oracle.timeline(chosen, first, last, zone, expected_granularity)
    assert body["totalMessages"] == len(chosen)
    drawn = [
        e for e in chosen if e["received_at"] < oracle.bucket_end(last, zone, expected_granularity)
    ]
    assert sum(b["count"] for b in body["timeline"]) == len(drawn)
    expected_breakdowns = oracle.breakdowns(chosen)
    assert body["byChannel"] == expected_breakdowns["byChannel"]
    assert body["byDirection"] == expected_breakdowns["byDirection"]


PROVIDED = {
    "rates": (
        "/api/v2/event-ops/metrics",
        "EventMetrics",
        {"eventsLastHour", "eventsPerHour", "eventsPerMinute"},
        set(),
    ),
    "timeline": (
        "/api/v2/events/analytics",
        "EventAnalytics",
        {"timeline", "timelineGranularity", "timelineTimezone"},
        {"granularity", "timezone"},
    ),
    "breakdowns": (
        "/api/v2/events/analytics",
        "EventAnalytics",
        {"byChannel", "byDirection"},
        set(),
    ),
}


@pytest.mark.parametrize("off", sorted(PROVIDED))
def test_each_provider_switches_off_alone(db_url, off):
    others = ",".join(name for name in PROVIDED if name != off)
    app = build_app(db_url, OMNI_DASHBOARD_PROVIDERS=others)
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    for name, (url, component, fields, arguments) in PROVIDED.items():
        status, body = get(client, url, {})
        assert status == 200
        body = body.get("data", body)
        properties = set(spec["components"]["schemas"][component]["properties"])
        path = url.removeprefix(spec["servers"][0]["url"])
        parameters = {p["name"] for p in spec["paths"][path]["get"].get("parameters", [])}
        if name == off:
            assert not fields & set(body) and not fields & properties
            assert not arguments & parameters
        else:
            assert fields <= set(body) and fields <= properties
            assert arguments <= parameters
