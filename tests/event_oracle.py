"""Plain-Python oracle for the event providers: rates, timeline, breakdowns.

Independent of omni_dashboard_plugin: buckets come from walking wall clocks minute by
minute, not from the 15-minute grid the plugin uses.
"""

import functools
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .oracle import in_window, pct

MINUTE = timedelta(minutes=1)


def rates(events, now):
    last_hour = sum(e["received_at"] >= now - timedelta(hours=1) for e in events)
    last_24h = sum(e["received_at"] >= now - timedelta(hours=24) for e in events)
    return {
        "eventsLastHour": last_hour,
        "eventsPerHour": last_24h / 24,
        "eventsPerMinute": last_hour / 60,
    }


window = in_window


def breakdowns(events):
    direction = Counter(e["direction"] for e in events)
    return {
        # A NULL channel is counted in every number but byChannel.
        "byChannel": dict(Counter(e["channel"] for e in events if e["channel"] is not None)),
        "byDirection": {"inbound": direction["inbound"], "outbound": direction["outbound"]},
    }


def _key(instant_utc, zone, granularity):
    local = instant_utc.astimezone(zone)
    if granularity == "daily":
        return local.date().isoformat()
    # The wall hour with the offset in force at the instant (not the offset that the hour's
    # first minute would have: Lord Howe's fall-back repeats only 01:30-02:00).
    return local.date().isoformat(), local.hour, local.utcoffset()


def buckets(first, last, zone_name, granularity):
    """Ordered (key, label) of the buckets from the one holding first to the one holding last.

    A bucket is a run of minutes with the same local date (daily) or the same local wall
    hour and offset (hourly); its label is the local time of its first minute.
    """
    return list(_buckets(first, last, zone_name, granularity))


@functools.lru_cache(maxsize=4096)
def _buckets(first, last, zone_name, granularity):
    """:func:`buckets` as a tuple, computed once per arguments (minute by minute, it is the
    oracle's slowest step, and the tests ask for the same windows again and again)."""
    zone = ZoneInfo(zone_name)
    first = first.replace(tzinfo=UTC)
    last = last.replace(tzinfo=UTC)
    cursor = first.replace(second=0, microsecond=0) - timedelta(hours=27)
    runs = []
    while cursor <= last:
        key = _key(cursor, zone, granularity)
        if not runs or runs[-1][0] != key:
            runs.append((key, cursor))
        cursor += MINUTE
    holding_first = max(i for i, (_, start) in enumerate(runs) if start <= first)
    return tuple((key, start.astimezone(zone).isoformat()) for key, start in runs[holding_first:])


def bucket_end(last, zone_name, granularity):
    """The first instant (naive UTC) after the bucket holding ``last``."""
    zone = ZoneInfo(zone_name)
    cursor = last.replace(tzinfo=UTC, second=0, microsecond=0)
    key = _key(cursor, zone, granularity)
    while _key(cursor, zone, granularity) == key:
        cursor += MINUTE
    return cursor.replace(tzinfo=None)


def timeline(events_in_window, first, last, zone_name, granularity, shift=timedelta(0)):
    """Zero-filled [{bucket, count, failed}] for the span [first, last]; events after the
    bucket holding ``last`` are in none.

    With ``shift`` the events are a comparison window's: each counts in the bucket holding
    its instant plus ``shift`` (the first or last bucket when none does), and the buckets
    are labelled ``shift`` earlier.
    """
    zone = ZoneInfo(zone_name)
    starts = [
        datetime.fromisoformat(label) for _, label in buckets(first, last, zone_name, granularity)
    ]
    end = bucket_end(last, zone_name, granularity)
    counts, failed = [0] * len(starts), [0] * len(starts)
    for e in events_in_window:
        if not shift and e["received_at"] >= end:
            continue
        at = e["received_at"].replace(tzinfo=UTC) + shift
        held = [i for i, start in enumerate(starts) if start <= at]
        assert held or shift, "an event fell outside the span"
        i = held[-1] if held else 0
        counts[i] += 1
        failed[i] += e["status"] == "failed"
    return [
        {"bucket": (start - shift).astimezone(zone).isoformat(), "count": c, "failed": f}
        for start, c, f in zip(starts, counts, failed, strict=True)
    ]


def span(events_in_window, since, until, now):
    """The span a timeline covers: since (or the earliest event, at the latest the end) to
    until (or now: later events do not stretch it)."""
    last = until if until is not None else now
    times = [e["received_at"] for e in events_in_window]
    first = since if since is not None else (min(min(times), last) if times else last)
    return first, max(first, last)


def dashboard_events(of, now, zone_name, compare=None):
    """The dashboard's ``events`` at ``now``, by the documented rules; ``of(since,
    until=None, before=None)`` picks the (filtered) rows with ``since <= t <= until``
    (or ``t < before``)."""
    day, hour, week = timedelta(hours=24), timedelta(hours=1), timedelta(days=7)
    everything, last_day, last_hour = of(None), of(now - day), of(now - hour)
    failed = sum(e["status"] == "failed" for e in everything)
    expected = {
        "total": len(everything),
        "failureRate": pct(failed, len(everything)),
        "last24h": len(last_day),
        "failed24h": sum(e["status"] == "failed" for e in last_day),
        "lastHour": len(last_hour),
        "perHour": len(last_day) / 24,
        "perMinute": len(last_hour) / 60,
        "timeline": timeline(last_day, now - day, now, zone_name, "hourly"),
        **breakdowns(last_day),
    }
    if compare is None:
        return expected
    if compare == "previous_period":
        shift = day
        earlier_day = of(now - 2 * day, before=now - day)
        earlier_hour = of(now - 2 * hour, before=now - hour)
    else:
        shift = week
        earlier_day = of(now - week - day, now - week)
        earlier_hour = of(now - week - hour, now - week)
    expected["previous"] = {
        "last24h": len(earlier_day),
        "failed24h": sum(e["status"] == "failed" for e in earlier_day),
        "lastHour": len(earlier_hour),
        "perHour": len(earlier_day) / 24,
        "perMinute": len(earlier_hour) / 60,
        "timeline": timeline(earlier_day, now - day, now, zone_name, "hourly", shift),
    }
    return expected
