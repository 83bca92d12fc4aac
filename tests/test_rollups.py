"""Rollups on and off give byte-identical responses, through late writes, retention,
soft deletes, deleted instances and automations, and refreshes at random points, on SQLite
and PostgreSQL."""

from datetime import datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from omni_dashboard_plugin.grid import EPOCH, FINE, slot_of, slot_time
from omni_dashboard_plugin.rollups.plan import plan

from . import rollup_support as rs


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


@pytest.mark.slow  # a Hypothesis search, each example on two apps with rollups refreshed
@rs.pair_examples(0.25)
@given(
    events=rs.history,
    logs=rs.logs,
    payloads=st.lists(
        st.tuples(rs.offset, st.one_of(st.none(), st.integers(0, 9000))),
        max_size=20,
    ),
    first_refresh=rs.offset,
    steps=st.lists(rs.step, min_size=1, max_size=8),
    window=st.tuples(st.integers(0, 79), st.integers(0, 79), st.sampled_from((-61, -1, 0, 1))),
    instance=st.sampled_from(rs.INSTANCE_IDS),
)
def test_rollups_on_and_off_answer_alike(
    pair, events, logs, payloads, first_refresh, steps, window, instance
):
    """A refresh to a random point, then random steps, each followed by a comparison of
    every dashboard-facing response."""
    pair.clear(rs.START)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    # The analytics window starts and ends at (or a second off) two of the events.
    ends = sorted(at(events[i % len(events)][0]) for i in window[:2])
    window = (ends[0] + timedelta(seconds=window[2]), ends[1] + timedelta(seconds=window[2]))
    rs.write(
        pair.engine,
        events=[rs.event_row(at(m), spec) for m, spec in events],
        logs=[rs.log_row(at(m), spec) for m, spec in logs],
        payloads=[rs.payload_row(at(m), size) for m, size in payloads],
        dead=[{"id": rs.uuid.uuid4(), "status": s} for s in ("pending", "resolved", "pending")],
    )
    gone = set()
    for action, value in [("refresh", first_refresh), *steps]:
        rs.apply_step(pair, action, value, events, gone)
        rs.assert_same(pair, window, instance)
    pair.rollups.refresh()
    assert pair.watermark().watermark_slot == slot_of(pair.clock.now - rs.HORIZON)
    rs.assert_same(pair, window, instance)


@given(
    since=st.one_of(st.none(), st.integers(-3000, 3000)),
    length=st.one_of(st.none(), st.integers(0, 3000)),
    start=st.integers(-300, 300),
    size=st.integers(0, 400),
    by_slot=st.booleans(),
    fine=st.one_of(st.none(), st.tuples(st.integers(-20, 100), st.integers(0, 400))),
    probes=st.lists(st.integers(-4000, 7000), min_size=1, max_size=40),
)
# A window that starts inside a fine bucket, and one that ends on a fine bucket's first instant.
@example(since=7, length=200, start=-10, size=100, by_slot=False, fine=(0, 120), probes=[0])
@example(since=6, length=200, start=-10, size=100, by_slot=True, fine=(0, 120), probes=[0])
def test_plan_covers_each_instant_of_the_window_once(
    since, length, start, size, by_slot, fine, probes
):
    """Raw pieces, fine buckets, slots, hours and days partition the window; rolled parts
    and fine buckets stay in [start, end) and in the fine slots; a window holds at most one
    day range and two hour and slot ranges, and at most a fine bucket of raw rows at each
    end of the fine slots."""
    base = datetime(2026, 3, 1)
    minute = lambda m: base + timedelta(minutes=m, seconds=7 * (m % 3))  # noqa: E731
    low = None if since is None else minute(since)
    high = None if length is None or low is None else low + timedelta(minutes=length)
    if high is not None and length % 2:  # the last instant before a slot (half-open ends)
        high = slot_time(slot_of(high) + 1) - timedelta(microseconds=1)
    first = slot_of(base) + start
    fine = fine and (first + fine[0], first + fine[0] + fine[1])
    parts = plan(low, high, first, first + size, by_slot=by_slot, fine=fine)
    kept = (max(fine[0], first), min(fine[1], first + size)) if fine else (0, 0)
    for a, b in parts.fine:
        assert slot_time(kept[0]) <= EPOCH + a * FINE < EPOCH + b * FINE <= slot_time(kept[1])
    for lo, hi, _ in parts.raw:  # within the fine slots, a raw piece is a bucket's at most
        if lo is not None and hi is not None and kept[0] < kept[1]:
            inside = max(lo, slot_time(kept[0])), min(hi, slot_time(kept[1]))
            assert inside[1] - inside[0] <= FINE, (lo, hi, parts)
    levels = dict(parts.levels)
    assert set(levels) <= ({"slot"} if by_slot else {"slot", "hour", "day"})
    assert len(levels.get("day", ())) <= 1 and len(levels.get("hour", ())) <= 2
    assert len(levels.get("slot", ())) <= 2 and all(a < b for r in levels.values() for a, b in r)
    width = {"slot": 1, "hour": 4, "day": 96}
    # Each end, the instant beside it, and the start of its fine bucket.
    tick = timedelta(microseconds=1)
    ends = [end for end in (low, high) if end is not None]
    edges = [t + d for t in ends for d in (-tick, 0 * tick, tick)]
    edges += [EPOCH + (t - EPOCH) // FINE * FINE for t in ends]
    for t in [minute(probe) for probe in probes] + edges:
        inside = (low is None or t >= low) and (high is None or t <= high)
        slot = slot_of(t)
        hits = sum(a <= slot // width[k] < b for k, r in levels.items() for a, b in r)
        rolled = hits
        fine_hits = sum(a <= (t - EPOCH) // FINE < b for a, b in parts.fine)
        hits += fine_hits
        hits += sum(
            (lo is None or t >= lo) and (hi is None or (t <= hi if incl else t < hi))
            for lo, hi, incl in parts.raw
        )
        assert hits == (1 if inside else 0), (t, parts)
        if rolled:
            assert first <= slot < first + size
            assert slot_time(slot) >= (low or slot_time(slot))
        if fine_hits:
            assert EPOCH + (t - EPOCH) // FINE * FINE >= (low or t)


def test_a_window_without_a_whole_rolled_slot_keeps_the_rolled_end_apart():
    """A window that starts in the last rolled slot and reaches past the rolled range holds
    no whole rolled slot; what lies from the range's end on is still a piece of its own (a
    reader takes it from the kept tail): as one raw piece with the head it was a window of
    raw rows, a last-hour count each time the horizon passed a slot before the refresh."""
    end = slot_of(datetime(2026, 3, 1, 12))
    since = slot_time(end) - timedelta(minutes=7)
    parts = plan(since, None, end - 100, end)
    assert parts.rolled is None
    assert parts.raw == ((since, slot_time(end), False), (slot_time(end), None, True))
    until = slot_time(end) + timedelta(minutes=20)
    assert plan(since, until, end - 100, end).raw == (
        (since, slot_time(end), False),
        (slot_time(end), until, True),
    )


def test_windows_without_a_whole_rolled_slot_read_alike(pair):
    """Rollups on equal off for windows that start in the last rolled slot."""
    rs.regular_history(pair, days=1, every_minutes=4, spec={**rs.SAMPLE_EVENT, "instance": 1})
    pair.rollups.refresh()
    end = slot_time(pair.watermark().watermark_slot)
    for minutes in (1, 7, 14):
        window = (end - timedelta(minutes=minutes), pair.clock.now)
        rs.assert_same(pair, window, rs.INSTANCE_IDS[1])
