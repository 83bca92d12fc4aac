"""Explicit edge cases of the timeline: DST days, half- and quarter-hour zones, edges, caps."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert

from host_example.tables import omni_events

from .conftest import API_KEY, Clock, build_app


@pytest.fixture(scope="module")
def env(db_url):
    clock = Clock()
    app = build_app(db_url, OMNI_CLOCK=clock, OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS=48)
    return app, app.extensions["omni_host"].engine, clock


def at(text):
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def analytics(env, events, now, **params):
    app, engine, clock = env
    clock.now = at(now)
    with engine.begin() as conn:
        conn.execute(delete(omni_events))
        for moment in events:
            conn.execute(
                insert(omni_events).values(
                    id=uuid.uuid4(),
                    channel="slack",
                    event_type="message.received",
                    direction="inbound",
                    status="completed",
                    received_at=at(moment),
                )
            )
    response = app.test_client().get(
        "/api/v2/events/analytics", query_string=params, headers={"x-api-key": API_KEY}
    )
    return response.status_code, response.get_json()


def pairs(body):
    return [(b["bucket"], b["count"]) for b in body["timeline"]]


def test_new_york_fall_back_has_two_distinct_one_oclock_hours(env):
    status, body = analytics(
        env,
        ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T06:59:59.999Z"],
        "2026-11-01T09:00:00Z",
        since="2026-11-01T04:00:00Z",
        until="2026-11-01T08:00:00Z",
        timezone="America/New_York",
        granularity="hourly",
    )
    assert status == 200
    assert pairs(body) == [
        ("2026-11-01T00:00:00-04:00", 0),
        ("2026-11-01T01:00:00-04:00", 1),
        ("2026-11-01T01:00:00-05:00", 2),
        ("2026-11-01T02:00:00-05:00", 0),
        ("2026-11-01T03:00:00-05:00", 0),
    ]


def test_lord_howe_repeats_only_half_an_hour_which_is_its_own_bucket(env):
    """Lord Howe falls back 30 minutes (02:00 +11:00 becomes 01:30 +10:30): the repeated
    half hour has its own offset, so it starts a bucket of its own."""
    status, body = analytics(
        env,
        ["2026-04-04T14:45:00Z", "2026-04-04T15:10:00Z", "2026-04-04T15:40:00Z"],
        "2026-04-05T00:00:00Z",
        since="2026-04-04T14:00:00Z",
        until="2026-04-04T16:45:00Z",
        timezone="Australia/Lord_Howe",
        granularity="hourly",
    )
    assert status == 200
    assert pairs(body) == [
        ("2026-04-05T01:00:00+11:00", 1),
        ("2026-04-05T01:30:00+10:30", 1),
        ("2026-04-05T02:00:00+10:30", 1),
        ("2026-04-05T03:00:00+10:30", 0),
    ]


def test_new_york_spring_forward_day_has_23_hours(env):
    events = ["2026-03-08T05:00:00Z", "2026-03-09T03:59:59.999Z", "2026-03-09T04:00:00Z"]
    status, body = analytics(
        env,
        events,
        "2026-03-10T12:00:00Z",
        since="2026-03-08T05:00:00Z",
        until="2026-03-09T12:00:00Z",
        timezone="America/New_York",
        granularity="daily",
    )
    assert status == 200
    assert pairs(body) == [("2026-03-08T00:00:00-05:00", 2), ("2026-03-09T00:00:00-04:00", 1)]
    status, body = analytics(
        env,
        events,
        "2026-03-10T12:00:00Z",
        since="2026-03-08T06:00:00Z",
        until="2026-03-08T07:30:00Z",
        timezone="America/New_York",
        granularity="hourly",
    )
    assert [b for b, _ in pairs(body)] == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"]


def utc(local_iso):
    """A local ISO instant as the naive-UTC ISO text the API takes (with Z)."""
    return datetime.fromisoformat(local_iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("day", "next_day", "hours"),
    [
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23),
        ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25),
    ],
)
def test_berlin_dst_days(env, day, next_day, hours):
    assert datetime.fromisoformat(next_day) - datetime.fromisoformat(day) == timedelta(hours=hours)
    last_instant_of_day = datetime.fromisoformat(next_day) - timedelta(milliseconds=1)
    status, body = analytics(
        env,
        [utc(day), utc(last_instant_of_day.isoformat()), utc(next_day)],
        "2026-11-20T00:00:00Z",
        since=utc(day),
        until=utc(next_day),
        timezone="Europe/Berlin",
        granularity="daily",
    )
    assert status == 200
    assert pairs(body) == [(day, 2), (next_day, 1)]


@pytest.mark.parametrize(
    ("zone", "offset", "boundary"),
    [("Asia/Kolkata", "+05:30", "04:30"), ("Asia/Kathmandu", "+05:45", "04:15")],
)
def test_hours_start_on_local_hours_in_offset_zones(env, zone, offset, boundary):
    boundary_instant = f"2026-03-10T{boundary}:00Z"
    status, body = analytics(
        env,
        [boundary_instant, "2026-03-10T03:59:00Z"],
        "2026-03-10T12:00:00Z",
        since="2026-03-10T03:00:00Z",
        until=boundary_instant,
        timezone=zone,
        granularity="hourly",
    )
    assert status == 200
    buckets = pairs(body)
    assert all(b.endswith(offset) and b[14:19] == "00:00" for b, _ in buckets)
    assert buckets[-1] == (f"2026-03-10T10:00:00{offset}", 1)
    assert sum(c for _, c in buckets) == 2


def test_window_and_bucket_edges_are_inclusive_at_the_start(env):
    events = [
        "2026-03-10T09:59:59.999Z",  # 1 ms before since: outside
        "2026-03-10T10:00:00Z",  # exactly since: inside, first bucket
        "2026-03-10T10:59:59.999Z",  # last instant of the first bucket
        "2026-03-10T11:00:00Z",  # first instant of the second bucket
        "2026-03-10T11:30:00Z",  # exactly until: inside
        "2026-03-10T11:30:00.001Z",  # 1 ms after until: outside
    ]
    status, body = analytics(
        env,
        events,
        "2026-03-10T12:00:00Z",
        since="2026-03-10T10:00:00Z",
        until="2026-03-10T11:30:00Z",
        granularity="hourly",
    )
    assert status == 200
    assert pairs(body) == [("2026-03-10T10:00:00+00:00", 2), ("2026-03-10T11:00:00+00:00", 2)]
    assert body["totalMessages"] == 4


def test_default_window_ends_at_now_zero_filled(env):
    status, body = analytics(env, ["2026-03-10T11:15:00Z"], "2026-03-10T12:00:00Z")
    assert status == 200
    assert body["timelineGranularity"] == "hourly"
    assert len(body["timeline"]) == 25  # the bucket holding now - 24 h through the one holding now
    assert body["timeline"][0] == {"bucket": "2026-03-09T12:00:00+00:00", "count": 0, "failed": 0}
    assert body["timeline"][-2] == {"bucket": "2026-03-10T11:00:00+00:00", "count": 1, "failed": 0}
    assert body["timeline"][-1] == {"bucket": "2026-03-10T12:00:00+00:00", "count": 0, "failed": 0}


def test_caps(env):
    events = ["2026-03-01T00:00:00Z", "2026-03-10T11:00:00Z"]
    now = "2026-03-10T12:00:00Z"
    status, body = analytics(env, events, now, allTime="true", granularity="hourly")
    assert status == 422
    assert "daily" in body["error"]["details"]["granularity"][0]
    status, body = analytics(env, events, now, allTime="true")
    assert status == 200 and body["timelineGranularity"] == "daily"
    assert pairs(body)[0] == ("2026-03-01T00:00:00+00:00", 1) and len(body["timeline"]) == 10
    status, body = analytics(env, events, now, since="2025-01-01T00:00:00Z", granularity="daily")
    assert status == 422
    assert "shorter window" in body["error"]["details"]["granularity"][0]
    status, body = analytics(env, [], now, allTime="true")
    assert status == 200 and pairs(body) == [("2026-03-10T12:00:00+00:00", 0)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"granularity": "weekly"}, "granularity"),
        ({"since": "0001-01-01T00:00:00Z", "granularity": "daily"}, "granularity"),
    ],
)
def test_bad_arguments_name_the_field(env, params, field):
    status, body = analytics(env, [], "2026-03-10T12:00:00Z", **params)
    assert status == 422
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in body["error"]["details"]


def test_default_zone_comes_from_config(db_url):
    app = build_app(db_url, OMNI_DASHBOARD_TIMEZONE="Asia/Kolkata")
    body = app.test_client().get("/api/v2/events/analytics", headers={"x-api-key": API_KEY})
    body = body.get_json()
    assert body["timelineTimezone"] == "Asia/Kolkata"
    assert body["timeline"][0]["bucket"].endswith("+05:30")
