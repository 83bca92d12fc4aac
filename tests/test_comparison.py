"""The channel filter and the comparisons (GET /events/analytics, GET /api/v2/dashboard)
against a plain-Python oracle, with rollups on and off, on SQLite and PostgreSQL, for
random windows, zones and filters around DST changes."""

import math
import uuid
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from . import event_oracle
from . import oracle as host_oracle
from . import rollup_support as rs
from .conftest import API_KEY, build_app

# A few days after DST changes, so that the windows and their comparisons straddle them.
ANCHORS = (
    rs.NOW,  # 2026-03-10 12:00; New York sprang forward on 8 March
    rs.NOW.replace(month=3, day=31, hour=6),  # Berlin on 29 March
    rs.NOW.replace(month=4, day=7, hour=3, minute=15),  # Santiago, Lord Howe on 5 April
    rs.NOW.replace(month=11, day=3, hour=6, minute=45),  # New York on 1 November
)
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Santiago",
)
UNKNOWN_INSTANCE = uuid.UUID(int=77)
QUARTER = timedelta(minutes=15)
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)

# Minutes before the clock: 16 days back (a 7-day window and the week before it), on and
# around slot edges, and a few after it (events stamped in the future).
moment = st.one_of(
    st.builds(
        lambda quarter, jitter: quarter * 15 + jitter,
        st.integers(0, 16 * 96),
        st.sampled_from((-1, 0, 0, 1, 7)),
    ),
    st.integers(-20, 0),
)
history = st.lists(st.tuples(moment, rs.event_spec), min_size=20, max_size=120)
instance = st.sampled_from((None, *rs.INSTANCE_IDS, UNKNOWN_INSTANCE))
channel = st.sampled_from((None, *rs.CHANNELS, "telegram"))
compare = st.sampled_from(("previous_period", "previous_week"))


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


def prepare(pair, anchor, events, refresh_minutes):
    """The history at ``anchor``, rolled up to ``refresh_minutes`` before it (``None``: as
    far as the horizon allows); the rows as written."""
    pair.clear(anchor)
    rows = [rs.event_row(anchor - timedelta(minutes=m), spec) for m, spec in events]
    rs.write(pair.engine, events=rows)
    until = None if refresh_minutes is None else anchor - timedelta(minutes=refresh_minutes)
    pair.rollups.refresh(until=until)
    return rows


def both(pair, url, params):
    """The JSON body of ``url`` from the app with rollups on, asserted equal to the other's."""
    bodies = []
    for app in (pair.on, pair.off):
        response = app.test_client().get(url, query_string=params, headers={"x-api-key": API_KEY})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        body.pop("system", None)  # measured latency differs between two calls
        bodies.append(body)
    assert bodies[0] == bodies[1], "rollups on and off differ"
    return bodies[0]


def matching(rows, since, until, instance_id, channel_name, *, before=None):
    """Rows with since <= t <= until (or t < before), of the instance and channel."""
    return [
        e
        for e in rows
        if (since is None or e["received_at"] >= since)
        and (until is None or e["received_at"] <= until)
        and (before is None or e["received_at"] < before)
        and (instance_id is None or e["instance_id"] == instance_id)
        and (channel_name is None or e["channel"] == channel_name)
    ]


def rounded_shift(shift):
    """The shift in whole quarter hours, rounded half up."""
    quarters = Fraction(shift // timedelta(microseconds=1), QUARTER // timedelta(microseconds=1))
    return math.floor(quarters + Fraction(1, 2)) * QUARTER


def earlier_rows(rows, since, until, now, how, instance_id, channel_name):
    """(rows, since, until, shift) of the comparison window, by the documented rule."""
    end = until if until is not None else now
    if how == "previous_period":
        length = max(end - since, timedelta(0))
        chosen = matching(rows, since - length, None, instance_id, channel_name, before=since)
        return chosen, since - length, since, length
    chosen = matching(rows, since - WEEK, end - WEEK, instance_id, channel_name)
    return chosen, since - WEEK, end - WEEK, WEEK


def stamp(moment_):
    return moment_.isoformat(timespec="milliseconds") + "Z"


def granularity_of(first, last, zone):
    return "hourly" if len(event_oracle.buckets(first, last, zone, "hourly")) <= 1000 else "daily"


@pytest.mark.slow  # a Hypothesis search, each example on two apps with rollups refreshed
@rs.pair_examples(0.2)
@given(
    anchor=st.sampled_from(ANCHORS),
    events=history,
    refresh=st.one_of(st.none(), st.integers(0, 10 * 24 * 60)),
    since_at=st.one_of(st.integers(0, 10_000), st.none()),
    since_minutes=st.integers(0, 8 * 24 * 60),
    since_seconds=st.sampled_from((0, 0, 1, 59)),
    length_minutes=st.one_of(st.none(), st.integers(0, 8 * 24 * 60)),
    instance_id=instance,
    channel_name=channel,
    how=compare,
    zone=st.sampled_from(ZONES),
)
def test_analytics_with_channel_and_comparison_equal_the_oracle(
    pair,
    anchor,
    events,
    refresh,
    since_at,
    since_minutes,
    since_seconds,
    length_minutes,
    instance_id,
    channel_name,
    how,
    zone,
):
    rows = prepare(pair, anchor, events, refresh)
    # At (or a second off) one of the events, so that the windows' bounds meet events.
    if since_at is not None:
        since_minutes = events[since_at % len(events)][0]
    since = anchor - timedelta(minutes=since_minutes, seconds=since_seconds)
    until = None if length_minutes is None else since + timedelta(minutes=length_minutes)
    params = {"since": stamp(since), "compare": how, "timezone": zone}
    if until is not None:
        params["until"] = stamp(until)
    if instance_id is not None:
        params["instanceId"] = str(instance_id)
    if channel_name is not None:
        params["channel"] = channel_name
    body = both(pair, "/api/v2/events/analytics", params)

    chosen = matching(rows, since, until, instance_id, channel_name)
    first, last = event_oracle.span(chosen, since, until, anchor)
    granularity = granularity_of(first, last, zone)
    expected = {
        **host_oracle.event_analytics(chosen),
        **event_oracle.breakdowns(chosen),
        "timeline": event_oracle.timeline(chosen, first, last, zone, granularity),
        "timelineGranularity": granularity,
        "timelineTimezone": zone,
    }
    earlier, low, high, shift = earlier_rows(
        rows, since, until, anchor, how, instance_id, channel_name
    )
    totals = host_oracle.event_analytics(earlier)
    expected["comparison"] = {
        "since": stamp(low),
        "until": stamp(high),
        **{
            key: totals[key]
            for key in (
                "totalMessages",
                "successfulMessages",
                "failedMessages",
                "successRate",
                "avgProcessingTimeMs",
            )
        },
        **event_oracle.breakdowns(earlier),
        "timeline": event_oracle.timeline(
            earlier, first, last, zone, granularity, rounded_shift(shift)
        ),
    }
    assert body == expected
    assert len(body["comparison"]["timeline"]) == len(body["timeline"])
    event(f"{how}, {'some' if earlier else 'no'} earlier events, {granularity}")


@pytest.mark.slow  # a Hypothesis search, each example on two apps with rollups refreshed
@rs.pair_examples(0.2)
@given(
    anchor=st.sampled_from(ANCHORS),
    events=history,
    refresh=st.one_of(st.none(), st.integers(0, 3 * 24 * 60)),
    instance_id=instance,
    channel_name=channel,
    how=st.one_of(st.none(), compare),
    zone=st.sampled_from(ZONES),
)
def test_dashboard_filters_and_comparison_equal_the_oracle(
    pair, anchor, events, refresh, instance_id, channel_name, how, zone
):
    rows = prepare(pair, anchor, events, refresh)
    params = {"timezone": zone}
    if instance_id is not None:
        params["instanceId"] = str(instance_id)
    if channel_name is not None:
        params["channel"] = channel_name
    if how is not None:
        params["compare"] = how
    body = both(pair, "/api/v2/dashboard", params)["events"]

    def of(since, until=None, before=None):
        return matching(rows, since, until, instance_id, channel_name, before=before)

    assert body == event_oracle.dashboard_events(of, anchor, zone, how)
    event(f"{how}: {'some' if body['last24h'] else 'no'} events in the last 24 h")


def test_every_bucket_start_moves_back_by_the_shift(pair):
    """The comparison's bucket i is the window's bucket i a week earlier, in the zone's
    offset of that instant (across New York's DST change: 08:00 EDT is 07:00 EST a week
    earlier)."""
    anchor = ANCHORS[0]
    prepare(pair, anchor, [], None)
    params = {"since": stamp(anchor - DAY), "compare": "previous_week"}
    body = both(pair, "/api/v2/events/analytics", {**params, "timezone": "America/New_York"})
    now_starts = [b["bucket"] for b in body["timeline"]]
    then_starts = [b["bucket"] for b in body["comparison"]["timeline"]]
    assert now_starts[0] == "2026-03-09T08:00:00-04:00"
    assert then_starts[0] == "2026-03-02T07:00:00-05:00"  # the same instant minus 168 h
    assert len(now_starts) == len(then_starts) == 25


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v2/events/analytics?compare=previous_month", "compare"),
        ("/api/v2/events/analytics?compare=previous_week&allTime=true", "compare"),
        ("/api/v2/events/analytics?channel=" + "x" * 51, "channel"),
        ("/api/v2/events/analytics?channel=", "channel"),
        ("/api/v2/dashboard?compare=yesterday", "compare"),
        ("/api/v2/dashboard?instanceId=not-a-uuid", "instanceId"),
        ("/api/v2/dashboard?channel=" + "x" * 51, "channel"),
    ],
)
def test_bad_filters_and_comparisons_are_refused_naming_the_argument(url, field, tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'omni.db'}")
    response = app.test_client().get(url, headers={"x-api-key": API_KEY})
    body = response.get_json()
    assert response.status_code == 422, body
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert list(body["error"]["details"]) == [field]
    assert "Traceback" not in response.get_data(as_text=True)


def test_an_unknown_channel_or_instance_has_no_events(pair):
    prepare(pair, ANCHORS[0], [(5, {**rs.SAMPLE_EVENT, "content_type": "text"})], None)
    for params in ({"channel": "telegram"}, {"instanceId": str(UNKNOWN_INSTANCE)}):
        body = both(pair, "/api/v2/events/analytics", {**params, "compare": "previous_week"})
        assert body["totalMessages"] == body["comparison"]["totalMessages"] == 0
        assert body["messageTypes"] == body["instances"] == body["byChannel"] == {}
        assert all(b["count"] == 0 for b in body["timeline"])
        events = both(pair, "/api/v2/dashboard", params)["events"]
        assert events["total"] == events["last24h"] == events["failureRate"] == 0
    everything = both(pair, "/api/v2/events/analytics", {"channel": rs.CHANNELS[0]})
    assert everything["totalMessages"] == 1 and everything["messageTypes"] == {"text": 1}


def test_without_compare_there_is_no_comparison(pair):
    prepare(pair, ANCHORS[0], [(5, rs.SAMPLE_EVENT)], None)
    assert "comparison" not in both(pair, "/api/v2/events/analytics", {})
    assert "previous" not in both(pair, "/api/v2/dashboard", {})["events"]


def test_switched_off_the_filter_and_the_comparison_leave_no_trace(tmp_path):
    app = build_app(
        f"sqlite:///{tmp_path / 'omni.db'}",
        OMNI_DASHBOARD_PROVIDERS="rates,timeline,breakdowns,automations",
    )
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    analytics = {p["name"] for p in spec["paths"]["/events/analytics"]["get"]["parameters"]}
    dashboard = {p["name"] for p in spec["paths"]["/dashboard"]["get"]["parameters"]}
    assert not {"channel", "compare"} & analytics
    schemas = spec["components"]["schemas"]
    assert "compare" not in dashboard and "DashboardPrevious" not in schemas
    assert "previous" not in schemas["DashboardEvents"]["properties"]
    assert "comparison" not in schemas["EventAnalytics"]["properties"]
