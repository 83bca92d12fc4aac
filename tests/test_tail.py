"""The raw tail kept by triggers on omni_events (PostgreSQL): exact after any write, read
instead of the recent rows, safe beside concurrent writers, folds and seeds."""

import itertools
import json
import logging
from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, func, insert, select, text, update

from host_example.tables import instances, omni_events
from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.grid import slot_of, slot_time
from omni_dashboard_plugin.rollups import tail
from omni_dashboard_plugin.rollups.kinds import (
    COUNTS_TAIL,
    DETAILS_TAIL,
    EDGES_TAIL,
    EVENT_COUNTS,
    EVENT_DETAILS,
    EVENT_LOG,
    EVENTS,
    LATENCY,
    LATENCY_COARSE_TAIL,
    LATENCY_TAIL,
    latency_bucket,
)
from omni_dashboard_plugin.rollups.state import read_watermark

from . import rollup_support as rs
from .conftest import NOW, build_app
from .waiting import deadline_in, expired

E = omni_events
DIMS = ("instance_id", "channel", "direction", "status", "error_stage", "content_type")
# Writes stay within the horizon (older rows are rolled up and do not change).
recent = st.tuples(st.integers(-20, 59), rs.event_spec)
tail_step = st.one_of(
    st.tuples(st.just("insert"), st.lists(recent, max_size=12)),
    st.tuples(st.just("finish"), st.integers(1, 900)),
    st.tuples(st.just("retime"), st.tuples(st.integers(0, 9), st.integers(-10, 40))),
    st.tuples(st.just("reprocess"), st.tuples(st.integers(0, 9), st.integers(0, 5000))),
    st.tuples(st.just("touch"), st.integers(0, 9)),
    st.tuples(st.just("delete"), st.integers(0, 6)),
    st.tuples(st.just("delete_instance"), st.integers(0, 2)),
    st.tuples(st.just("truncate"), st.none()),
    st.tuples(st.just("refresh"), st.none()),
    st.tuples(st.just("advance"), st.integers(1, 40)),
)


@pytest.fixture(scope="module")
def pair(pg_url):
    return rs.Pair(pg_url)


def _coarse(ms: int) -> int:
    """The latency bucket as SQL computes it (its integer division truncates: a negative
    duration, which Omni should not write, falls in bucket 0 or above)."""
    return latency_bucket(ms) if ms >= 0 else -(-ms // 16)


EVENT_MEASURES = ("n", "failed", "proc_sum", "proc_n", "agent_sum", "agent_n")


def _oracle(engine, first: int) -> dict[str, dict]:
    """Plain Python over omni_events, of every slot from ``first`` on: per tail kind, per
    (slot, the kind's dims) its measures (the six event measures summed per slot and all
    six dims, or the count per slot, latency bucket and value, then summed to its keys)."""
    events, latency = defaultdict(lambda: [0] * 6), defaultdict(int)
    columns = [E.c.received_at, *(E.c[d] for d in DIMS)]
    columns += [E.c.processing_time_ms, E.c.agent_latency_ms]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns)).all()
    for at, *dims, processing, agent in rows:
        slot = slot_of(at)
        if slot < first:
            continue
        sums = events[(slot, *dims)]
        sums[0] += 1
        sums[1] += dims[3] == "failed"
        sums[2] += processing or 0
        sums[3] += processing is not None
        sums[4] += agent or 0
        sums[5] += agent is not None
        if processing is not None:
            latency[(slot, _coarse(processing), processing)] += 1
    found = {}
    for kind in EVENT_LOG.kinds:
        if "coarse" in kind.dims:
            fine, names, measures = {k: [n] for k, n in latency.items()}, ("coarse", "value"), [0]
        else:
            fine, names, measures = events, DIMS, [EVENT_MEASURES.index(m) for m in kind.measures]
        picks = [names.index(d) + 1 for d in kind.dims]
        summed: dict = {}
        for key, values in fine.items():
            total = summed.setdefault((key[0], *(key[i] for i in picks)), [0] * len(measures))
            for n, i in enumerate(measures):
                total[n] += values[i]
        found[kind.name] = summed
    return found


def _kept(engine, first: int) -> dict[str, dict]:
    """The event tail tables summed per key, keys that sum to nothing left out."""
    found = {}
    for kind in EVENT_LOG.kinds:
        table = kind.table("tail")
        keys = [table.c.bucket, *(table.c[d] for d in kind.dims)]
        sums = [text(f"sum({m})::bigint") for m in kind.measures]
        with engine.connect() as conn:
            rows = conn.execute(
                select(*keys, *sums).where(table.c.bucket >= first).group_by(*keys)
            ).all()
        width = len(keys)
        kept = {tuple(row[:width]): [int(v) for v in row[width:]] for row in rows}
        found[kind.name] = {key: v for key, v in kept.items() if any(v)}
    return found


def _start(engine) -> int | None:
    with engine.connect() as conn:
        state = tail.state
        return conn.execute(
            select(state.c.start_slot).where(state.c.name == tail.STATE_NAME)
        ).scalar()


def _young(pair, time, n: int) -> list:
    """The ids of up to ``n`` rows of ``time``'s table young enough to change (10 minutes
    short of the horizon, so that a move 10 minutes back keeps them within it)."""
    rows = time.table
    young = time >= pair.clock.now - rs.HORIZON + timedelta(minutes=10)
    with pair.engine.connect() as conn:
        return conn.scalars(select(rows.c.id).where(young).order_by(rows.c.id).limit(n)).all()


def _ids(pair, n: int) -> list:
    """Up to ``n`` events young enough to change."""
    return _young(pair, E.c.received_at, n)


def _refresh_or_advance(pair, action, value) -> None:
    """The steps that are not writes: a refresh, or the clock ``value`` minutes on."""
    if action == "refresh":
        pair.rollups.refresh()
    elif action == "advance":
        pair.clock.now += timedelta(minutes=value)


def _apply(pair, action, value) -> None:
    now, engine = pair.clock.now, pair.engine
    with engine.begin() as conn:
        if action == "insert" and value:
            # Deleted instances receive no more events.
            alive = set(conn.scalars(select(instances.c.id)).all())
            rows = [rs.event_row(now - timedelta(minutes=m), spec) for m, spec in value]
            for row in rows:
                if row["instance_id"] not in alive:
                    row["instance_id"] = None
            conn.execute(insert(E), rows)
        elif action == "finish":
            rs.finish_recent(engine, now - rs.HORIZON, value)
        elif action == "retime":  # received_at moved across slots (and the watermark)
            chosen = _ids(pair, value[0])
            moved = E.c.received_at + timedelta(minutes=value[1])
            conn.execute(update(E).where(E.c.id.in_(chosen)).values(received_at=moved))
        elif action == "reprocess":  # a measure changes, the dims stay
            chosen = _ids(pair, value[0])
            conn.execute(update(E).where(E.c.id.in_(chosen)).values(processing_time_ms=value[1]))
        elif action == "touch":  # an update that changes nothing the tail keeps
            chosen = _ids(pair, value)
            conn.execute(update(E).where(E.c.id.in_(chosen)).values(chat_id="read"))
        elif action == "delete":
            conn.execute(delete(E).where(E.c.id.in_(_ids(pair, value))))
        elif action == "delete_instance":
            conn.execute(delete(instances).where(instances.c.id == rs.INSTANCE_IDS[value]))
        elif action == "truncate":
            conn.execute(text(f"TRUNCATE {E.name}"))
    _refresh_or_advance(pair, action, value)


@pytest.mark.slow  # a Hypothesis search, each example on two apps with writes and folds
@rs.pair_examples(0.3)
@given(
    history=st.lists(st.tuples(st.integers(0, 600), rs.event_spec), max_size=40),
    steps=st.lists(tail_step, min_size=1, max_size=10),
    instance=st.sampled_from(rs.INSTANCE_IDS),
)
def test_the_tail_follows_every_write(pair, history, steps, instance):
    """After a refresh seeds the tail, every insert, status change, move across slots,
    change of a measure alone, unrelated update, delete, deleted instance, TRUNCATE, fold
    and trim leaves the tail tables equal, slot by slot, to the raw rows summed in Python;
    and every dashboard-facing response is the same with rollups on and off."""
    pair.clear(rs.START)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), spec) for m, spec in history])
    pair.rollups.refresh()
    assert pair.watermark().tail is not None
    for action, value in steps:
        _apply(pair, action, value)
        first = _start(pair.engine)
        assert first is not None
        assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    assert pair.watermark().tail is not None
    rs.assert_same(pair, (at(300), at(0)), instance)


def _slipper(engine):
    """Inserts into a tail kind's table a row of 1,000 events that no write made."""

    def slip(kind, **values) -> None:
        if "failed" in kind.measures and values.get("status") == "failed":
            values = {"failed": 1000} | values
        with engine.begin() as conn:
            conn.execute(insert(kind.table("tail")).values(**rs.slipped_row(kind, **values)))

    return slip


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_requests_read_the_tail_tables(pair):
    """Every event number of the raw tail comes from the tail tables, each from the
    smallest that answers it: a row slipped into one (which no write made) shows in the
    dashboard, analytics and event-ops answers that read it."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 300, 7)])
    pair.rollups.refresh()
    mark = pair.watermark()
    assert mark.tail == mark.watermark_slot
    paths = ("/api/v2/dashboard", "/api/v2/events/analytics", "/api/v2/event-ops/metrics")
    before = {path: json.loads(pair.get(pair.on, path)) for path in paths}
    slip = _slipper(pair.engine)
    slip(
        EDGES_TAIL,
        bucket=mark.watermark_slot,
        channel="slack",
        direction="inbound",
        status="failed",
    )
    after = {path: json.loads(pair.get(pair.on, path)) for path in paths}
    board = before["/api/v2/dashboard"]["events"], after["/api/v2/dashboard"]["events"]
    assert board[1]["total"] == board[0]["total"] + 1000
    assert board[1]["failed24h"] == board[0]["failed24h"] + 1000
    analytics = [x["/api/v2/events/analytics"] for x in (before, after)]
    assert analytics[1]["totalMessages"] == analytics[0]["totalMessages"] + 1000
    assert analytics[1]["failedMessages"] == analytics[0]["failedMessages"] + 1000
    ops = [x["/api/v2/event-ops/metrics"]["data"] for x in (before, after)]
    assert ops[1]["totalEvents"] == ops[0]["totalEvents"] + 1000
    assert ops[1]["failed"] == ops[0]["failed"] + 1000
    # Content types from the details tail, an instance's counts from the counts tail ...
    slip(DETAILS_TAIL, bucket=mark.watermark_slot, channel="slack", content_type="audio")
    analytics = json.loads(pair.get(pair.on, "/api/v2/events/analytics"))
    assert analytics["messageTypes"].get("audio") == 1000
    one = f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[0]}"
    narrowed = json.loads(pair.get(pair.on, one))["events"]["total"]
    slip(
        COUNTS_TAIL,
        bucket=mark.watermark_slot,
        instance_id=rs.INSTANCE_IDS[0],
        channel="slack",
        direction="outbound",
        status="sent",
    )
    assert json.loads(pair.get(pair.on, one))["events"]["total"] == narrowed + 1000
    # ... and the latency percentile from the latency tails (counts by bucket, then values).
    value = 99_999
    coarse = text(f"{_coarse(value)}")
    slip(LATENCY_COARSE_TAIL, bucket=mark.watermark_slot, coarse=coarse)
    slip(LATENCY_TAIL, bucket=mark.watermark_slot, coarse=coarse, value=value)
    ops = json.loads(pair.get(pair.on, "/api/v2/event-ops/metrics"))["data"]
    assert ops["p95ProcessingTimeMs"] == value
    pair.clear(NOW)


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_a_refresh_rolls_the_slots_the_tail_keeps_from_it(pair):
    """A slot that the tail keeps is rolled up from the tail's rows (a few a slot), not by
    scanning its events again (at 2,000 events a second, 1.8 million a slot, four times):
    a row slipped into each tail kind shows in the rolled slots of the kinds it answers,
    and the dashboard's total does not change when its slot moves from the tail to the
    rolled slots."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 300, 7)])
    pair.rollups.refresh()
    mark = pair.watermark()
    slot = mark.watermark_slot
    assert mark.tail == slot
    slip = _slipper(pair.engine)
    slip(EDGES_TAIL, bucket=slot, channel="slack", direction="inbound", status="failed")
    slip(COUNTS_TAIL, bucket=slot, instance_id=rs.INSTANCE_IDS[0], channel="slack")
    slip(DETAILS_TAIL, bucket=slot, channel="slack", content_type="audio")
    coarse = text(f"{_coarse(99_999)}")
    slip(LATENCY_TAIL, bucket=slot, coarse=coarse, value=99_999)
    total = json.loads(pair.get(pair.on, "/api/v2/dashboard"))["events"]["total"]
    raw = json.loads(pair.get(pair.off, "/api/v2/dashboard"))["events"]["total"]
    assert total == raw + 1000
    pair.clock.now = NOW + rs.HORIZON  # the slot closes to late writes
    pair.rollups.refresh()
    assert pair.watermark().watermark_slot > slot
    with pair.engine.connect() as conn:
        for kind in (EVENTS, EVENT_COUNTS, EVENT_DETAILS, LATENCY):
            within = [kind.time >= slot_time(slot), kind.time < slot_time(slot + 1)]
            within += [kind.where] if kind.where is not None else []
            rows = select(func.count()).select_from(kind.source).where(*within)
            table = kind.table("slot")
            rolled = select(func.sum(table.c.n)).where(table.c.bucket == slot)
            assert conn.execute(rolled).scalar() == conn.execute(rows).scalar() + 1000, kind.name
    assert json.loads(pair.get(pair.on, "/api/v2/dashboard"))["events"]["total"] == total
    pair.clear(NOW)


def _drop_triggers(engine) -> None:
    """What a migration that recreates omni_events does to the triggers."""
    with engine.begin() as conn:
        for named in tail.NAMED:
            for statement in named.drops():
                conn.execute(text(statement))


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_dropped_triggers_read_raw_until_a_refresh_puts_them_back(pair):
    """Triggers dropped by a migration: reads notice at once and read the tail raw (exact);
    the next refresh recreates them and seeds the tables again."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 200, 9)])
    pair.rollups.refresh()
    assert pair.watermark().tail is not None
    _drop_triggers(pair.engine)
    assert pair.watermark().tail is None
    _apply(pair, "insert", [(5, rs.SAMPLE_EVENT), (1, {**rs.SAMPLE_EVENT, "instance": 1})])
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[0])
    pair.rollups.refresh()
    first = pair.watermark().tail
    assert first is not None
    _apply(pair, "finish", 30)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[1])


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_a_release_that_keeps_other_tables_seeds_them_again(pair):
    """A trigger function of another release (here: one that keeps nothing) is replaced
    by the install, which forgets the tail: reads take it raw until the next refresh has
    seeded the current tables."""
    pair.clear(NOW)
    at = lambda minutes: pair.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 200, 9)])
    pair.rollups.refresh()
    with pair.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE OR REPLACE FUNCTION {tail.functions_of(EVENT_LOG)[0]}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$"
            )
        )
    _apply(pair, "insert", [(5, rs.SAMPLE_EVENT), (1, {**rs.SAMPLE_EVENT, "instance": 1})])
    assert pair.rollups.install()
    assert pair.watermark().tail is None  # what that function left out is not in the tables
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[1])
    pair.rollups.refresh()
    first = pair.watermark().tail
    assert first is not None
    _apply(pair, "insert", [(2, rs.SAMPLE_EVENT)])
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    rs.assert_same(pair, (at(100), at(0)), rs.INSTANCE_IDS[0])


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_writers_during_folds_and_seeds_lose_nothing(pg_url):
    """Writers insert, complete and delete events in their own transactions while another
    connection folds the tail over and over and now and then seeds it from scratch; the
    tail stays exact."""
    pair = rs.Pair(pg_url)
    pair.clear(NOW)
    pair.rollups.refresh()

    rounds = []
    deadline = deadline_in()

    def writer(seed):
        """Writes at least 40 rounds, and on until the refresh has seeded the tail again
        (its fifth round) and folded after it, however slow the machine."""
        spec = {**rs.SAMPLE_EVENT, "status": "received", "instance": seed}
        own = E.c.instance_id == rs.INSTANCE_IDS[seed]  # no two writers wait on one row
        for i in itertools.count():
            if i >= 40 and len(rounds) >= 6:
                break
            assert not expired(deadline), f"{len(rounds)} refreshes: hung?"
            _apply(pair, "insert", [(i % 50 - 5, spec)] * 4)
            with pair.engine.begin() as conn:
                received = own & (E.c.status == "received")
                completed = {"status": "completed", "processing_time_ms": i}
                conn.execute(update(E).where(received).values(**completed))
                if i % 7 == 0:
                    first = select(E.c.id).where(own).order_by(E.c.id).limit(2)
                    conn.execute(delete(E).where(E.c.id.in_(first.scalar_subquery())))

    def refresh():
        if len(rounds) % 5 == 4:  # forget the tail: the next refresh seeds it again
            with pair.engine.begin() as conn:
                conn.execute(delete(tail.state).where(tail.state.c.name == tail.STATE_NAME))
        pair.rollups.refresh()
        rounds.append(1)

    errors = rs.alongside([lambda seed=seed: writer(seed) for seed in (1, 2)], refresh)
    assert not errors
    first = _start(pair.engine)
    assert first is not None
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    assert sum(n[0] for n in _oracle(pair.engine, first)[EDGES_TAIL.name].values()) > 0
    assert len(rounds) >= 6  # a seed, and a fold after it, while the writers wrote


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_without_the_right_to_create_triggers_the_tail_is_read_raw(pg_url, caplog):
    """A database user that does not own omni_events: rollups without a kept tail, a
    warning that says what to grant, and the same numbers as with rollups off."""
    owner = rs.Pair(pg_url)
    owner.clear(NOW)
    at = lambda minutes: owner.clock.now - timedelta(minutes=minutes)  # noqa: E731
    rs.write(owner.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 90, 4)])
    _drop_triggers(owner.engine)
    with rs.database_role(pg_url, rs.READER_GRANTS) as url:
        with caplog.at_level(logging.WARNING):
            app = build_app(
                url,
                OMNI_CLOCK=owner.clock,
                OMNI_DASHBOARD_CACHE_SECONDS=0,
                OMNI_DASHBOARD_ROLLUPS="on",
                OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
            )
        assert "grant the database user ownership of omni_events" in caplog.text
        app.extensions["omni_dashboard"].rollups.refresh()
        engine = app.extensions["omni_host"].engine
        with engine.connect() as conn:
            assert read_watermark(conn).tail is None
        for path in ("/api/v2/dashboard", "/api/v2/events/analytics"):
            on, off = (json.loads(owner.get(a, path)) for a in (app, owner.off))
            on.pop("system", None), off.pop("system", None)
            assert on == off
        engine.dispose()


def test_a_writer_without_rights_on_the_tail_tables_still_writes(pair, pg_url):
    """The host's writer role may write omni_events only: the triggers' function runs as
    the plugin's user, so its writes succeed and are kept."""
    pair.clear(NOW)
    pair.rollups.refresh()
    grants = [
        "GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {E.name} TO {{role}}",
    ]
    with rs.database_role(pg_url, grants) as url:
        writer = create_engine(url)
        spec = {**rs.SAMPLE_EVENT, "instance": 3, "status": "received"}
        with writer.begin() as conn:
            rows = [rs.event_row(NOW - timedelta(minutes=m), spec) for m in (1, 2)]
            conn.execute(insert(E), rows)
            conn.execute(update(E).values(status="completed"))
        writer.dispose()
    first = _start(pair.engine)
    kept = _kept(pair.engine, first)
    assert kept == _oracle(pair.engine, first) and kept[EDGES_TAIL.name]


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_raw_setting_removes_the_triggers(pg_url):
    """OMNI_DASHBOARD_ROLLUPS_TAIL=raw: start-up drops the triggers and the tail is read
    raw (exact); a bad value stops start-up naming the key."""
    rs.Pair(pg_url)
    raw = rs.Pair(pg_url, fresh=False, OMNI_DASHBOARD_ROLLUPS_TAIL="raw")
    with raw.engine.connect() as conn:
        assert not conn.execute(select(tail.in_place())).scalar()
    raw.clear(NOW)
    rs.write(raw.engine, events=[rs.event_row(NOW - timedelta(minutes=3), rs.SAMPLE_EVENT)])
    raw.rollups.refresh()
    assert raw.watermark().tail is None
    rs.assert_same(raw, (NOW - timedelta(hours=2), NOW), rs.INSTANCE_IDS[0])
    with pytest.raises(ConfigError, match="OMNI_DASHBOARD_ROLLUPS_TAIL"):
        build_app(pg_url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_DASHBOARD_ROLLUPS_TAIL="x")
    rs.Pair(pg_url)  # back to triggers for the module's other tests


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_reads_fold_the_tail_in_the_background(pg_url):
    """OMNI_DASHBOARD_ROLLUPS_REFRESH=request: caught up, a read still starts a background
    refresh when the tail is kept, and it folds the rows of many small writes into one per
    slot and key."""
    pair = rs.Pair(pg_url, OMNI_DASHBOARD_ROLLUPS_REFRESH="request")
    pair.clear(NOW)
    pair.rollups.refresh()
    for minutes in range(20):  # twenty statements, one event each, in two slots
        _apply(pair, "insert", [(minutes % 2, rs.SAMPLE_EVENT)])
    table = EDGES_TAIL.table("tail")
    with pair.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 20
    pair.get(pair.on, "/api/v2/event-ops/metrics")
    pair.rollups.wait(60)
    with pair.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() <= 2
    first = _start(pair.engine)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
