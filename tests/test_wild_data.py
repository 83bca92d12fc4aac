"""Data from the wild (``tests/wild_data.py``) on SQLite and PostgreSQL, read with rollups
off and on (partly refreshed, from the year 1): every endpoint answers 200, or a 4xx
envelope naming an argument the client sent; windows the client left open are bounded by
what the response says (the dashboard's timeline is its 24 hours, an open ``until`` is
now); the numbers equal plain-Python oracles; both apps answer byte for byte alike."""

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from . import event_oracle
from . import oracle as host_oracle
from . import rollup_support as rs
from . import wild_data as wd
from .conftest import API_KEY, NOW

DAY = timedelta(hours=24)
ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Kiritimati")
# Values of each argument of /events/analytics: edges, the past, the future, nonsense.
ANALYTICS = {
    "since": (
        "0001-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z",
        "2026-03-09T12:00:00Z",  # exactly now - 24 h
        "2026-03-03T12:00:00.000001Z",
        "2026-03-10T12:00:00Z",  # exactly now
        "2026-03-10T12:01:00+00:01",
        "2326-03-10T12:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ),
    "until": (
        "2026-03-10T12:00:00Z",
        "2026-03-09T12:00:00Z",
        "2029-03-09T12:00:00Z",
        "0001-01-01T00:00:00Z",
        "2026-03-10T07:00:00-05:00",
    ),
    "allTime": ("true", "false"),
    "instanceId": (str(wd.INSTANCE_LIVE), str(wd.INSTANCE_GONE), "not-a-uuid"),
    "granularity": ("hourly", "daily"),
    "timezone": (*ZONES, "Mars/Olympus"),
    "channel": ("дискорд", "", "'; DROP TABLE omni_events; --", "%", "a\nb", "x" * 51),
    "compare": ("previous_period", "previous_week"),
}
NAMES = sorted(ANALYTICS)


def analytics_queries():
    """Every combination of the arguments, each with values that rotate through their
    pools (the n-th combination takes value n + i of the i-th argument's pool)."""
    subsets = itertools.chain.from_iterable(
        itertools.combinations(NAMES, size) for size in range(len(NAMES) + 1)
    )
    for n, subset in enumerate(subsets):
        yield {
            name: ANALYTICS[name][(n + NAMES.index(name)) % len(ANALYTICS[name])] for name in subset
        }


@pytest.fixture(scope="module")
def wild(db_url):
    """The wild rows, and the pair of apps (rollups on and off) on them, at ``NOW``; the
    rollups refreshed for their first days (a refresh from the year 1 to now is another
    issue's), so that reads combine rolled slots and raw rows."""
    pair = rs.Pair(db_url)
    data = wd.load(pair.engine)
    pair.rollups.reset()  # what other tests rolled up on this database
    pair.rollups.refresh(max_chunks=3)
    assert pair.watermark() is not None
    return pair, data


def answer(pair, path, params=None) -> tuple[int, dict]:
    """Status and body of ``path`` from both apps, asserted alike (but the dashboard's
    measured system part)."""
    found = []
    for app in (pair.on, pair.off):
        response = app.test_client().get(path, query_string=params, headers={"x-api-key": API_KEY})
        body = response.get_json()
        if isinstance(body, dict) and path.endswith("/dashboard"):
            body.pop("system", None)
        found.append((response.status_code, body))
    assert found[0] == found[1], f"{path} {params}: rollups on and off differ"
    return found[0]


def refused(status, body, params) -> bool:
    """Whether the answer is a 4xx envelope naming only arguments the client sent."""
    if status not in (400, 422):
        return False
    details = body["error"]["details"]
    return body["error"]["code"] == "VALIDATION_ERROR" and details and set(details) <= set(params)


def instant(text: str) -> datetime:
    """A query timestamp as naive UTC."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def window_of(params) -> tuple[datetime | None, datetime | None]:
    since = instant(params["since"]) if "since" in params else None
    if since is None and params.get("allTime") != "true":
        since = NOW - DAY
    return since, instant(params["until"]) if "until" in params else None


def matching(events, since, until, params, *, before=None):
    return [
        e
        for e in events
        if (since is None or e["received_at"] >= since)
        and (until is None or e["received_at"] <= until)
        and (before is None or e["received_at"] < before)
        and ("instanceId" not in params or str(e["instance_id"]) == params["instanceId"])
        and ("channel" not in params or e["channel"] == params["channel"])
    ]


def check_timeline(body, params, chosen):
    """The buckets run from the one holding the window's first instant to the one holding
    its last (``until``, else now), in the stated granularity, and count exactly the
    window's events up to the last bucket's end."""
    since, until = window_of(params)
    first, last = event_oracle.span(chosen, since, until, NOW)
    granularity, zone = body["timelineGranularity"], ZoneInfo(body["timelineTimezone"])
    assert granularity == params.get("granularity", granularity)
    starts = [datetime.fromisoformat(b["bucket"]) for b in body["timeline"]]
    for start in starts:
        assert start.utcoffset() == start.astimezone(zone).utcoffset()
    steps = {later - earlier for earlier, later in itertools.pairwise(starts)}
    longest = timedelta(hours=1) if granularity == "hourly" else timedelta(hours=25)
    assert all(timedelta(0) < step <= longest for step in steps)
    end = event_oracle.bucket_end(last, body["timelineTimezone"], granularity)
    assert starts[0] <= first.replace(tzinfo=UTC)
    assert starts[-1] <= last.replace(tzinfo=UTC) < end.replace(tzinfo=UTC)
    drawn = [e for e in chosen if e["received_at"] < end]
    assert sum(b["count"] for b in body["timeline"]) == len(drawn)
    assert sum(b["failed"] for b in body["timeline"]) == sum(e["status"] == "failed" for e in drawn)


@pytest.mark.slow  # every combination of arguments over the wild rows
def test_every_combination_of_analytics_arguments(wild):
    pair, data = wild
    answered = Counter()
    for params in analytics_queries():
        status, body = answer(pair, "/api/v2/events/analytics", params)
        if status != 200:
            assert refused(status, body, params), (params, status, body)
            answered["refused"] += 1
            continue
        answered["200"] += 1
        since, until = window_of(params)
        chosen = matching(data.events, since, until, params)
        expected = host_oracle.event_analytics(chosen)
        assert {k: body[k] for k in expected} == expected, params
        assert body["byChannel"] == event_oracle.breakdowns(chosen)["byChannel"]
        check_timeline(body, params, chosen)
    assert answered["200"] > 80 and answered["refused"] > 80, answered


@pytest.mark.parametrize("params", [{}, {"timezone": "Pacific/Kiritimati"}, {"allTime": "false"}])
def test_an_open_window_ends_at_now_whatever_the_future_holds(wild, params):
    pair, data = wild
    status, body = answer(pair, "/api/v2/events/analytics", params)
    assert status == 200, body
    zone = params.get("timezone", "UTC")
    chosen = matching(data.events, NOW - DAY, None, params)
    assert body["timelineGranularity"] == "hourly"
    assert body["timeline"] == event_oracle.timeline(chosen, NOW - DAY, NOW, zone, "hourly")
    assert (
        body["totalMessages"] == len(chosen) > len([e for e in chosen if e["received_at"] <= NOW])
    )


def test_all_time_from_the_year_1_names_all_time(wild):
    pair, _ = wild
    status, body = answer(pair, "/api/v2/events/analytics", {"allTime": "true"})
    assert status == 422 and list(body["error"]["details"]) == ["allTime"]
    status, body = answer(
        pair, "/api/v2/events/analytics", {"allTime": "true", "since": "2025-01-01T00:00:00Z"}
    )
    assert status == 200 and body["timelineGranularity"] == "daily"


# The quick selection keeps UTC and a zone with half-hour DST; a whole run has every zone.
QUICK_ZONES = ("UTC", "Australia/Lord_Howe")


@pytest.mark.parametrize(
    "zone", [z if z in QUICK_ZONES else pytest.param(z, marks=pytest.mark.slow) for z in ZONES]
)
@pytest.mark.parametrize(
    "filters",
    [{}, {"instanceId": str(wd.INSTANCE_LIVE)}, {"instanceId": str(wd.INSTANCE_GONE)}]
    + [{"channel": channel} for channel in wd.CHANNELS if channel],
)
@pytest.mark.parametrize("compare", [None, "previous_period", "previous_week"])
def test_the_dashboards_timeline_is_its_24_hours(wild, zone, filters, compare):
    pair, data = wild
    params = {"timezone": zone, **filters, **({"compare": compare} if compare else {})}
    status, body = answer(pair, "/api/v2/dashboard", params)
    assert status == 200, body
    events = body["events"]

    def of(since, until=None, before=None):
        return matching(data.events, since, until, params, before=before)

    assert events == event_oracle.dashboard_events(of, NOW, zone, compare)
    assert len(events["timeline"]) == len(event_oracle.buckets(NOW - DAY, NOW, zone, "hourly"))


def test_the_hosts_endpoints_equal_the_oracles(wild):
    pair, data = wild
    status, metrics = answer(pair, "/api/v2/event-ops/metrics")
    assert status == 200
    expected = host_oracle.event_metrics(data.events, data.dead_letters, data.payloads, NOW)
    assert {k: metrics["data"][k] for k in expected} == expected
    assert answer(pair, "/api/v2/dead-letters/stats") == (
        200,
        {"data": host_oracle.dead_letter_stats(data.dead_letters)},
    )
    status, health = answer(pair, "/api/v2/health")
    assert status == 200 and health["instances"] == host_oracle.instance_summary(data.instances)
    status, automations = answer(pair, "/api/v2/automation-metrics")
    assert status == 200 and automations["totalActions"] == host_oracle.actions(data.logs)


@pytest.mark.parametrize("filters", [{}, {"status": "failed"}, {"status": "skipped"}])
def test_automation_logs_page_through_every_wild_row_once(wild, filters):
    pair, data = wild
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **filters, **({"cursor": cursor} if cursor else {})}
        status, body = answer(pair, "/api/v2/automation-logs", params)
        assert status == 200, body
        for item in body["items"]:
            assert item["actionsExecuted"] is None or isinstance(item["actionsExecuted"], list)
        seen += [item["id"] for item in body["items"]]
        if not body["meta"]["hasMore"]:
            break
        cursor = body["meta"]["cursor"]
    assert seen == host_oracle.automation_log_order(data.logs, status=filters.get("status"))


def test_the_scrape_parses_and_equals_the_oracle(wild):
    pair, data = wild
    names = {"omni_events_total", "omni_dead_letters", "omni_instances"}
    expected = host_oracle.prometheus_samples(
        data.events, data.logs, data.dead_letters, data.instances
    )
    for app in (pair.on, pair.off):
        response = app.test_client().get(
            "/api/v2/dashboard/metrics", headers={"x-api-key": API_KEY}
        )
        assert response.status_code == 200
        families = text_string_to_metric_families(response.get_data(as_text=True))
        found = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in families
            for s in family.samples
            if s.name in names
        }
        assert found == {key: v for key, v in expected.items() if key[0] in names}
        assert {name for name, _ in found} == names


def test_the_wild_rows_change_nothing_but_numbers_in_json(wild):
    """Hostile strings come back as JSON strings, escaped, never as markup or SQL."""
    pair, _ = wild
    status, body = answer(
        pair, "/api/v2/events/analytics", {"allTime": "true", "since": "2026-01-01T00:00:00Z"}
    )
    assert status == 200
    text = json.dumps(body)
    assert "'; DROP TABLE omni_events; --" in body["byChannel"] and "<script>" in text
