"""The automation logs' tail kept by triggers on automation_logs (PostgreSQL): exact after
any write, deleted automation or fold, and read instead of the recent logs."""

import json
from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text, update

from host_example.tables import automation_logs, automations
from omni_dashboard_plugin.grid import slot_of
from omni_dashboard_plugin.rollups import tail
from omni_dashboard_plugin.rollups.kinds import AUTOMATION_LOG, AUTOMATIONS, AUTOMATIONS_TAIL

from . import rollup_support as rs
from .conftest import NOW
from .test_tail import _refresh_or_advance, _start, _young

L = automation_logs
# Writes stay within the horizon (older rows are rolled up and do not change).
recent = st.tuples(st.integers(-20, 59), rs.log_spec)
step = st.one_of(
    st.tuples(st.just("insert"), st.lists(recent, max_size=12)),
    st.tuples(st.just("status"), st.tuples(st.integers(0, 9), rs.log_spec)),
    st.tuples(st.just("retime"), st.tuples(st.integers(0, 9), st.integers(-10, 40))),
    st.tuples(st.just("touch"), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.integers(0, 6)),
    st.tuples(st.just("delete_automation"), st.integers(0, 2)),
    st.tuples(st.just("truncate"), st.none()),
    st.tuples(st.just("refresh"), st.none()),
    st.tuples(st.just("advance"), st.integers(1, 40)),
)


@pytest.fixture(scope="module")
def pair(pg_url):
    return rs.Pair(pg_url)


def _oracle(engine, first: int) -> dict:
    """Plain Python over automation_logs, of every slot from ``first`` on: per (slot,
    status, automation) the count, actions executed, and sum and count of execution
    times."""
    found: dict = defaultdict(lambda: [0, 0, 0, 0])
    columns = (L.c.created_at, L.c.status, L.c.automation_id, L.c.actions_executed)
    with engine.connect() as conn:
        rows = conn.execute(select(*columns, L.c.execution_time_ms)).all()
    for at, status, automation, actions, time in rows:
        if slot_of(at) < first:
            continue
        sums = found[(slot_of(at), status, automation)]
        sums[0] += 1
        sums[1] += len(actions) if isinstance(actions, list) else 0
        sums[2] += time or 0
        sums[3] += time is not None
    return dict(found)


def _kept(engine, first: int) -> dict:
    """The automations' tail view summed per key, keys that sum to nothing left out."""
    table = AUTOMATIONS_TAIL.table("tail")
    keys = [table.c.bucket, table.c.status, table.c.automation_id]
    sums = [text(f"sum({m})::bigint") for m in AUTOMATIONS_TAIL.measures]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*keys, *sums).where(table.c.bucket >= first).group_by(*keys)
        ).all()
    kept = {tuple(row[:3]): [int(v) for v in row[3:]] for row in rows}
    return {key: values for key, values in kept.items() if any(values)}


def _ids(pair, n: int) -> list:
    """Up to ``n`` logs young enough to change."""
    return _young(pair, L.c.created_at, n)


def _apply(pair, action, value, gone: set) -> None:
    now, engine = pair.clock.now, pair.engine
    with engine.begin() as conn:
        if action == "insert" and value:
            # Deleted automations log no more.
            specs = [(m, spec) for m, spec in value if spec["automation"] not in gone]
            rows = [rs.log_row(now - timedelta(minutes=m), spec) for m, spec in specs]
            if rows:
                conn.execute(insert(L), rows)
        elif action == "status":  # Omni writes a log once; a host may correct one
            n, spec = value
            changed = {
                "status": spec["status"],
                "actions_executed": spec["actions"],
                "execution_time_ms": spec["time"],
            }
            conn.execute(update(L).where(L.c.id.in_(_ids(pair, n))).values(**changed))
        elif action == "retime":  # created_at moved across slots (and the watermark)
            moved = L.c.created_at + timedelta(minutes=value[1])
            conn.execute(update(L).where(L.c.id.in_(_ids(pair, value[0]))).values(created_at=moved))
        elif action == "touch":  # an update that changes nothing the tail keeps
            chosen = _ids(pair, value)
            conn.execute(update(L).where(L.c.id.in_(chosen)).values(error="touched"))
        elif action == "delete":
            conn.execute(delete(L).where(L.c.id.in_(_ids(pair, value))))
        elif action == "delete_automation":  # its logs of every age go (ON DELETE CASCADE)
            conn.execute(delete(automations).where(automations.c.id == rs.AUTOMATION_IDS[value]))
            gone.add(value)
        elif action == "truncate":
            conn.execute(text(f"TRUNCATE {L.name}"))
    _refresh_or_advance(pair, action, value)


@pytest.mark.slow  # a Hypothesis search, each example on two apps with writes and folds
@rs.pair_examples(0.3)
@given(
    history=st.lists(st.tuples(st.integers(0, 600), rs.log_spec), max_size=40),
    steps=st.lists(step, min_size=1, max_size=10),
)
def test_the_automations_tail_follows_every_write(pair, history, steps):
    """After a refresh seeds the tail, every insert of a log, correction of its status,
    actions and time, move across slots, unrelated update, delete, deleted automation (its
    logs cascade), TRUNCATE, fold and trim leaves the automations' tail equal, slot by
    slot, to the logs summed in Python; and every dashboard-facing response is the same
    with rollups on and off."""
    pair.clear(rs.START)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, logs=[rs.log_row(at(m), spec) for m, spec in history])
    pair.rollups.refresh()
    assert pair.watermark().tail is not None
    gone: set = set()
    for action, value in steps:
        _apply(pair, action, value, gone)
        first = _start(pair.engine)
        assert first is not None
        assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    assert pair.watermark().tail is not None
    rs.assert_same(pair, (at(300), at(0)), rs.INSTANCE_IDS[0])


@pytest.mark.slow  # triggers installed and folded on PostgreSQL, seconds each
def test_requests_read_the_automations_tail(pair):
    """The automation numbers of the raw tail come from the automations' tail view: a row
    slipped into it (which no write made) shows in the dashboard's and
    /automation-metrics' totals and recent failures; after the slot is rolled, in the
    rolled rows (rolled from the view, not the logs)."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    spec = {"status": "success", "automation": 0, "actions": [{"action": "x"}], "time": 5}
    rs.write(pair.engine, logs=[rs.log_row(at(m), spec) for m in range(0, 300, 7)])
    pair.rollups.refresh()
    mark = pair.watermark()
    assert mark.tail == mark.watermark_slot

    def numbers():
        board = json.loads(pair.get(pair.on, "/api/v2/dashboard"))["automations"]
        metrics = json.loads(pair.get(pair.on, "/api/v2/automation-metrics"))
        return board, metrics

    board, metrics = numbers()
    with pair.engine.begin() as conn:
        values = {"status": "failed", "automation_id": rs.AUTOMATION_IDS[1]}
        row = rs.slipped_row(AUTOMATIONS_TAIL, bucket=mark.watermark_slot, **values)
        conn.execute(insert(AUTOMATIONS_TAIL.table("tail")).values(**row))
    slipped = 1000
    after_board, after_metrics = numbers()
    assert after_board["totalExecutions"] == board["totalExecutions"] + slipped
    assert after_metrics["totalExecutions"] == metrics["totalExecutions"] + slipped
    assert after_metrics["recentFailures"] == metrics["recentFailures"] + slipped
    pair.clock.now = NOW + rs.HORIZON  # the slot closes to late writes
    pair.rollups.refresh()
    assert pair.watermark().watermark_slot > mark.watermark_slot
    table = AUTOMATIONS.table("slot")
    with pair.engine.connect() as conn:
        rolled = select(table.c.n).where(
            table.c.bucket == mark.watermark_slot,
            table.c.status == "failed",
            table.c.automation_id == rs.AUTOMATION_IDS[1],
        )
        assert conn.execute(rolled).scalar() == slipped
    assert numbers()[1]["totalExecutions"] == after_metrics["totalExecutions"]
    pair.clear(NOW)


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_dropped_automation_log_triggers_read_raw_until_a_refresh(pair):
    """A migration that recreates automation_logs drops its triggers: reads notice at once
    and read both tails raw (exact); the next refresh puts them back and seeds again."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    spec = {"status": "failed", "automation": 1, "actions": None, "time": 30}
    rs.write(pair.engine, logs=[rs.log_row(at(m), spec) for m in range(0, 200, 9)])
    pair.rollups.refresh()
    assert pair.watermark().tail is not None
    (named,) = [n for n in tail.NAMED if n.source == L.name]
    with pair.engine.begin() as conn:
        for statement in named.drops():
            conn.execute(text(statement))
    assert pair.watermark().tail is None
    rs.write(pair.engine, logs=[rs.log_row(at(m), spec) for m in (1, 3)])
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[0])
    pair.rollups.refresh()
    first = pair.watermark().tail
    assert first is not None
    _apply(pair, "insert", [(2, spec)], set())
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    with pair.engine.connect() as conn:
        logged = conn.execute(select(AUTOMATION_LOG.log.c.status)).scalars().all()
    assert logged == ["failed"]  # an aged log's insert (this clock is the database's past)
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[1])


@pytest.mark.slow  # triggers installed and folded on PostgreSQL, a column's type changed
def test_a_host_whose_actions_are_json_corrects_its_logs(pair):
    """A host's actions_executed may be json, which has no equality operator: a correction
    of an aged log still succeeds (the trigger compares it as text), and is kept."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    spec = {"status": "success", "automation": 2, "actions": [{"action": "x"}], "time": 8}
    rs.write(pair.engine, logs=[rs.log_row(at(m), spec) for m in range(0, 200, 9)])
    pair.rollups.refresh()
    retyped = "ALTER TABLE automation_logs ALTER COLUMN actions_executed TYPE {0} USING {1}::{0}"
    with pair.engine.begin() as conn:
        conn.execute(text(retyped.format("json", "actions_executed")))
    try:
        corrected = {**spec, "status": "failed", "actions": [{"action": "x"}] * 2}
        _apply(pair, "status", (4, corrected), set())
        _apply(pair, "touch", 9, set())
        first = _start(pair.engine)
        assert _kept(pair.engine, first) == _oracle(pair.engine, first)
        with pair.engine.connect() as conn:
            signs = conn.execute(select(AUTOMATION_LOG.log.c.sign)).scalars().all()
        assert sorted(signs) == [-1] * 4 + [1] * 4  # the corrections only, not the touches
        rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[0])
    finally:
        with pair.engine.begin() as conn:
            conn.execute(text(retyped.format("jsonb", "actions_executed")))
