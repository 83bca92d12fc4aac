"""The tail's cut (PostgreSQL): a write to an event younger than the margin calls no trigger
function and is read from omni_events; a fold never moves the cut past a write it did not
see, however long the writer's transaction stays open; writers of young and aged events
beside folds lose nothing."""

import itertools
import logging
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, func, insert, literal_column, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from host_example.tables import omni_events
from omni_dashboard_plugin.rollups import tail
from omni_dashboard_plugin.rollups.kinds import COUNTS_TAIL, EDGES_TAIL, EVENT_LOG, tail_cut

from . import rollup_support as rs
from .test_tail import _kept, _oracle, _start
from .waiting import deadline_in, expired, wait_until

# Slow: triggers installed with another margin, folds waiting on the database's clock.
pytestmark = pytest.mark.slow

E = omni_events
MARGIN = "OMNI_DASHBOARD_ROLLUPS_TAIL_MARGIN_SECONDS"


def _clock(engine) -> datetime:
    """The database's clock, naive UTC (what the triggers' margin is measured by)."""
    with engine.connect() as conn:
        return conn.execute(select(literal_column("clock_timestamp() AT TIME ZONE 'UTC'"))).scalar()


def _cut(engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(tail_cut.c.cut)).scalar()


def _logged(conn) -> int:
    return conn.execute(select(func.count()).select_from(EVENT_LOG.log)).scalar()


def _exact(pair, now, instance=0) -> None:
    first = _start(pair.engine)
    assert first is not None
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    window = (now - timedelta(hours=3), now + timedelta(minutes=1))
    rs.assert_same(pair, window, rs.INSTANCE_IDS[instance])


def _cut_reaches(pair, moment: datetime) -> datetime:
    """Refresh until the cut is at ``moment`` or later (a transaction elsewhere in the
    cluster may hold it back for a while); the cut."""

    def reached():
        pair.rollups.refresh()
        cut = _cut(pair.engine)
        return cut if cut is not None and cut >= moment else None

    return wait_until(reached, f"the tail's cut to reach {moment}")


def test_young_writes_call_nothing_and_aged_ones_are_logged(pg_url):
    """An insert and status moves of an event younger than the margin append nothing to the
    log (no trigger function ran) and show at once; one of an event older than the margin
    is logged as before; every read is exact before and after the folds."""
    pair = rs.Pair(pg_url, **{MARGIN: 60})
    now = _clock(pair.engine)
    pair.clear(now)  # the app's clock is the database's: its horizon and the margin agree
    spec = {**rs.SAMPLE_EVENT, "instance": 1}
    history = [rs.event_row(now - timedelta(minutes=m), spec) for m in range(2, 200, 7)]
    rs.write(pair.engine, events=history)
    _cut_reaches(pair, now - timedelta(seconds=60))
    _exact(pair, now, 1)
    young = rs.event_row(now - timedelta(seconds=1), {**spec, "status": "received"})
    with pair.engine.begin() as conn:
        conn.execute(insert(E).values(**young))
        conn.execute(update(E).where(E.c.id == young["id"]).values(status="processing"))
        done = {"status": "completed", "processing_time_ms": 321, "agent_latency_ms": 99}
        conn.execute(update(E).where(E.c.id == young["id"]).values(**done))
        assert _logged(conn) == 0
    _exact(pair, now, 1)
    aged = rs.event_row(now - timedelta(minutes=5), {**spec, "status": "received"})
    with pair.engine.begin() as conn:
        conn.execute(insert(E).values(**aged))
        conn.execute(update(E).where(E.c.id == aged["id"]).values(status="failed"))
        # A status move of an event before the cut (the history's) is logged too.
        older = history[1]["id"]
        conn.execute(update(E).where(E.c.id == older).values(status="failed"))
        assert _logged(conn) == 1 + 2 + 2
    _exact(pair, now, 1)
    # Aged, yet after the cut (folds have not moved it since): logged, and read from
    # omni_events, not twice.
    cut = _cut(pair.engine)
    after = rs.event_row(cut + timedelta(seconds=0.5), {**spec, "status": "received"})
    aged_at = after["received_at"] + timedelta(seconds=60)
    wait_until(lambda: _clock(pair.engine) > aged_at, "an event after the cut to age")
    with pair.engine.begin() as conn:
        before = _logged(conn)
        conn.execute(insert(E).values(**after))
        conn.execute(update(E).where(E.c.id == after["id"]).values(status="failed"))
        assert _logged(conn) == before + 3
    assert _cut(pair.engine) == cut
    _exact(pair, now, 1)
    pair.rollups.refresh()
    _exact(pair, now, 1)


def test_the_cut_waits_for_a_writer_that_has_not_committed(pg_url):
    """A writer moves a young event (no log row) and keeps its transaction open past the
    margin: folds meanwhile leave the cut before that event, so its old status is not
    folded into the kept rows; once it commits, the reads show the new status."""
    pair = rs.Pair(pg_url, **{MARGIN: 1})
    now = _clock(pair.engine)
    pair.clear(now)
    # Dated ahead, so that it is still young when the writer moves it on a slow machine.
    row = rs.event_row(now + timedelta(seconds=4), {**rs.SAMPLE_EVENT, "status": "received"})
    rs.write(pair.engine, events=[row])
    pair.rollups.refresh()
    with pair.engine.connect() as writer:
        done = {"status": "completed", "processing_time_ms": 77, "agent_latency_ms": 5}
        writer.execute(update(E).where(E.c.id == row["id"]).values(**done))
        assert _logged(writer) == 0  # young: no trigger function ran
        aged = row["received_at"] + timedelta(seconds=1.5)
        wait_until(lambda: _clock(pair.engine) > aged, "the event to age past the margin")
        for _ in range(3):
            pair.rollups.refresh()
            cut = _cut(pair.engine)
            assert cut is not None and cut <= row["received_at"]
        writer.commit()
    _exact(pair, now)
    _cut_reaches(pair, row["received_at"] + timedelta(microseconds=1))
    _exact(pair, now)


def test_writers_of_young_and_aged_events_beside_folds_lose_nothing(pg_url):
    """Writers insert events dated from a few seconds before the database's clock to one
    after it, move and delete them, each statement committed, while folds move the cut
    across them (a margin of 1 s); the tail stays exact."""
    pair = rs.Pair(pg_url, **{MARGIN: 1})
    now = _clock(pair.engine)
    pair.clear(now)
    pair.rollups.refresh()
    rounds, deadline = [], deadline_in()

    def writer(seed):
        """Writes at least 40 rounds, and on until the cut has moved 6 times."""
        draw = random.Random(seed)
        spec = {**rs.SAMPLE_EVENT, "status": "received", "instance": seed}
        own = E.c.instance_id == rs.INSTANCE_IDS[seed]
        for i in itertools.count():
            if i >= 40 and len(set(rounds)) >= 6:
                break
            assert not expired(deadline), f"{len(set(rounds))} cuts: hung?"
            at = datetime.now(UTC).replace(tzinfo=None)
            row = rs.event_row(at + timedelta(seconds=draw.uniform(-4, 1)), spec)
            with pair.engine.begin() as conn:
                conn.execute(insert(E).values(**row))
            with pair.engine.begin() as conn:
                conn.execute(update(E).where(E.c.id == row["id"]).values(status="processing"))
            with pair.engine.begin() as conn:
                received = own & (E.c.status == "processing") & (E.c.id != row["id"])
                done = {"status": "completed", "processing_time_ms": i}
                conn.execute(update(E).where(received).values(**done))
            if i % 7 == 0:
                with pair.engine.begin() as conn:
                    first = select(E.c.id).where(own).order_by(E.c.id).limit(1)
                    conn.execute(delete(E).where(E.c.id.in_(first.scalar_subquery())))

    def refresh():
        pair.rollups.refresh()
        rounds.append(_cut(pair.engine))

    errors = rs.alongside([lambda seed=seed: writer(seed) for seed in (1, 2)], refresh)
    assert not errors
    _exact(pair, now, 1)
    first = _start(pair.engine)
    assert sum(n[0] for n in _oracle(pair.engine, first)[EDGES_TAIL.name].values()) > 0
    pair.rollups.refresh()
    _exact(pair, now, 2)


def _pair_with_events(pg_url, seconds: range, **spec):
    """A fresh pair at the database's clock with instance 1's events received ``seconds``
    ago (``spec`` overrides the sample's fields): the pair, the clock and the rows."""
    pair = rs.Pair(pg_url)
    now = _clock(pair.engine)
    pair.clear(now)
    spec = {**rs.SAMPLE_EVENT, "instance": 1, **spec}
    rows = [rs.event_row(now - timedelta(seconds=s), spec) for s in seconds]
    rs.write(pair.engine, events=rows)
    return pair, now, rows


def _scans_of(plan: dict, relation: str) -> list[dict]:
    """The nodes of an EXPLAIN (FORMAT JSON) plan that scan ``relation``."""
    found = [plan] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += _scans_of(child, relation)
    return found


def _planned_as_its_function_runs(conn, kind, **only: list[str]) -> dict:
    """The plan of the query that the tail kind's function runs, with the function's own
    settings (read from the catalog) in force, and its parameters NULL (every value) but
    those of ``only`` (the values a narrowed read keeps)."""
    body, settings = conn.execute(
        text("SELECT prosrc, proconfig FROM pg_proc WHERE proname = :name"),
        {"name": tail.recent_function(kind)},
    ).one()
    query = body.split("BEGIN RETURN QUERY ", 1)[1].removesuffix("; END")
    kept = kind.table("kept")
    for d in kind.dims:
        values = only.get(d)
        array = "NULL" if values is None else "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"
        typed = f"{array}::{ARRAY(kept.c[d].type).compile(dialect=postgresql.dialect())}"
        query = re.sub(rf"\bonly_{d}\b", typed, query)
    for setting in settings:
        name, value = setting.split("=", 1)
        conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {query}").scalar()[0]["Plan"]


def _nodes(plan: dict) -> list[str]:
    return [plan["Node Type"], *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def test_a_read_of_the_tail_is_planned_for_the_rows_after_the_cut(pg_url):
    """The planner estimates a tail view's read of omni_events from the cut's value, not a
    third of the table (what it assumes of a value it cannot see: at 10M events that plan
    took parallel workers and a second of JIT compilation to read a few seconds of rows);
    and, as that estimate comes from statistics that end at the last ANALYZE, the rows are
    read whatever it guesses as the thousands they may be: a bitmap scan (each page once)
    and hashed, not one heap visit a row and a sort (the function's own settings)."""
    pair, now, _ = _pair_with_events(pg_url, range(60, 6060, 2))
    _cut_reaches(pair, now - timedelta(seconds=30))
    with pair.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE omni_events")
        view = EDGES_TAIL.table("tail").name
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) SELECT * FROM {view}").scalar()
        assert not _scans_of(plan[0]["Plan"], omni_events.name)  # only in the function
        assert "Function Scan" in _nodes(plan[0]["Plan"])
        assert "Gather" not in _nodes(plan[0]["Plan"])
        inside = _planned_as_its_function_runs(conn, EDGES_TAIL)
        # A narrowed read's: by the cut's index alone, not also by the index on channel
        # (whose thousands of rows of a channel a BitmapAnd would read).
        narrowed = _planned_as_its_function_runs(conn, EDGES_TAIL, channel=["whatsapp"])
    for plan in (inside, narrowed):
        (scan,) = _scans_of(plan, omni_events.name)
        assert scan["Plan Rows"] < 50, scan  # none of the 3,000 events is after the cut
        assert scan["Node Type"] == "Bitmap Heap Scan", scan
        assert [index["Index Name"] for index in scan["Plans"]] == ["ix_omni_events_received_at"]
        assert "Sort" not in _nodes(plan), plan
    _exact(pair, now, 1)


def test_an_install_replaces_a_tail_function_of_other_columns(pg_url, caplog):
    """A release whose family has other columns or parameters: its function cannot be
    replaced in place (PostgreSQL keeps a function's result type, and a function of other
    parameters is another function), so the install drops it and its view first, and the
    tail is kept, read exactly, not read raw for good. So with the function of an earlier
    release (``_recent``, no parameters), which is dropped too."""
    pair, now, _ = _pair_with_events(pg_url, range(0, 3600, 7))
    view, reader = EDGES_TAIL.table("tail").name, tail.recent_function(EDGES_TAIL)
    earlier = f"{view}_recent"
    assert earlier != reader  # a call without arguments would find both
    with pair.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP VIEW {view}")
        conn.exec_driver_sql(f"DROP FUNCTION {reader}")
        for name, parameters in ((earlier, ""), (reader, "only_status text")):
            conn.exec_driver_sql(
                f"CREATE FUNCTION {name}({parameters}) RETURNS TABLE (bucket bigint) "
                "LANGUAGE sql STABLE AS 'SELECT 1::bigint'"
            )
        conn.exec_driver_sql(f"CREATE VIEW {view} AS SELECT * FROM {earlier}()")
        conn.exec_driver_sql(f"COMMENT ON VIEW {view} IS 'an earlier release'")
    with caplog.at_level(logging.WARNING, logger=tail.log.name):
        assert pair.rollups.install()
    assert not caplog.records, caplog.text  # not "the raw tail is read raw"
    _cut_reaches(pair, now - timedelta(seconds=30))
    with pair.engine.connect() as conn:
        columns = conn.exec_driver_sql(f"SELECT * FROM {reader}() LIMIT 0").keys()
        named = "SELECT proname FROM pg_proc WHERE proname IN (%(earlier)s, %(reader)s)"
        found = conn.exec_driver_sql(named, {"earlier": earlier, "reader": reader}).all()
    assert list(columns) == [c.name for c in EDGES_TAIL.table("kept").c]
    assert found == [(reader,)]  # this release's, once; the earlier one's gone
    _exact(pair, now, 1)


def test_an_install_that_fails_for_another_reason_than_a_grant_says_so(pg_url, caplog):
    """The warning names the error, and asks for a grant only when one is missing."""
    pair = rs.Pair(pg_url)
    view = EDGES_TAIL.table("tail").name
    try:
        with pair.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW {view}")
            conn.exec_driver_sql(f"CREATE SEQUENCE {view}")  # where the view goes
        with caplog.at_level(logging.WARNING, logger=tail.log.name):
            pair.rollups.install()
        assert f'"{view}" is not a view' in caplog.text
        assert "grant" not in caplog.text
    finally:
        with pair.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {view}")
        assert pair.rollups.install()


def test_a_refresh_builds_no_statement_of_the_tail(pg_url, monkeypatch):
    """The fold, the mark and the check that the triggers are in place are built once per
    process, with the watermark and the clock as parameters: building the fold took 12 ms
    of CPU, and a host refreshes as often as every second under ingest."""
    pair, now, _ = _pair_with_events(pg_url, range(60, 3600, 7), status="received")
    _cut_reaches(pair, now - timedelta(seconds=30))  # seeded
    pair.rollups.refresh()  # and folded
    builders = ("_moved", "_marked", "_usable", "_stored", "_used_marks")
    calls = []
    for name in builders:
        original = getattr(tail, name)
        monkeypatch.setattr(tail, name, lambda *a, o=original, n=name: calls.append(n) or o(*a))
    with pair.engine.begin() as conn:  # a change to an aged event: the next fold has a row
        conn.execute(update(E).values(status="completed").where(E.c.received_at < now))
    pair.clock.now = now + timedelta(minutes=20)  # a later watermark
    for _ in range(3):
        pair.rollups.refresh()
    assert calls == []
    _exact(pair, pair.clock.now, 1)


def _kept_rows_in(engine, kind, bucket: int) -> int:
    with engine.connect() as conn:
        kept = kind.table("kept")
        return conn.execute(select(func.count()).where(kept.c.bucket == bucket)).scalar()


def test_a_fold_trims_the_kept_slots_only_when_the_watermark_moved(pg_url):
    """The kept slots more than a day before the watermark are deleted when it moves on,
    and a fold at the watermark of the fold before (every refresh of a slot, every second
    under ingest) runs none of the trim's statements."""
    pair, now, _ = _pair_with_events(pg_url, range(60, 3600, 7), status="received")
    _cut_reaches(pair, now - timedelta(seconds=30))  # seeded
    pair.rollups.refresh()  # and folded: trimmed at this watermark
    watermark = pair.watermark().watermark_slot
    stale = watermark - tail.KEPT_BEFORE - 1  # what a trim at the next watermark deletes
    with pair.engine.begin() as conn:  # a kept row no fold would write there
        conn.execute(
            insert(EDGES_TAIL.table("tail")).values(**rs.slipped_row(EDGES_TAIL, bucket=stale))
        )
    sent = []
    listen = lambda conn, cursor, statement, *rest: sent.append(statement)  # noqa: E731
    event.listen(pair.engine, "before_cursor_execute", listen)
    try:
        pair.rollups.refresh()
        assert pair.watermark().watermark_slot == watermark
        assert _kept_rows_in(pair.engine, EDGES_TAIL, stale) == 1
        assert not [s for s in sent if re.match(r"DELETE FROM \w+_tail_kept|UPDATE", s)]
        pair.clock.now = now + timedelta(minutes=20)  # a later watermark
        pair.rollups.refresh()
    finally:
        event.remove(pair.engine, "before_cursor_execute", listen)
    assert pair.watermark().watermark_slot > watermark
    assert _kept_rows_in(pair.engine, EDGES_TAIL, stale) == 0
    _exact(pair, pair.clock.now, 1)


def test_a_fold_scans_the_new_events_once(pg_url):
    """A fold reads omni_events' rows between the two cuts once for all its families (each
    scanned them itself: five scans of the same rows), and stays exact."""
    pair, now, _ = _pair_with_events(pg_url, range(60, 3600, 7), status="received")
    _cut_reaches(pair, now - timedelta(seconds=30))  # seeded: the next refresh folds
    scans = []

    def planned(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("WITH cuts AS"):  # the fold (see tail._moved)
            with cursor.connection.cursor() as own:  # EXPLAIN alone runs nothing
                own.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                scans.append(len(_scans_of(own.fetchone()[0][0]["Plan"], omni_events.name)))

    event.listen(pair.engine, "before_cursor_execute", planned)
    try:
        pair.rollups.refresh()
    finally:
        event.remove(pair.engine, "before_cursor_execute", planned)
    assert scans == [1]
    _exact(pair, now, 1)


def test_the_fold_is_not_compiled(pg_url):
    """The fold reads both cuts in its own statement, so the planner guesses a share of
    omni_events between them: at 10M events its estimate crossed jit_above_cost, and JIT
    compilation took 250 ms of a fold that read a few seconds of rows. It runs with JIT off,
    whatever the server's default."""
    pair, now, _ = _pair_with_events(pg_url, range(60, 600, 5))
    pair.engine.dispose()
    seen = []

    def jit_on(dbapi_connection, record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = on")

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("WITH cuts AS"):  # the fold (see tail._moved)
            with cursor.connection.cursor() as own:
                own.execute("SHOW jit")
                seen.append(own.fetchone()[0])

    event.listen(pair.engine, "connect", jit_on)
    event.listen(pair.engine, "before_cursor_execute", before)
    try:
        _cut_reaches(pair, now - timedelta(seconds=30))
    finally:
        event.remove(pair.engine, "before_cursor_execute", before)
        event.remove(pair.engine, "connect", jit_on)
    assert seen and set(seen) == {"off"}
    with pair.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "on"  # only the fold's transaction
    _exact(pair, now, 1)


def test_a_read_of_the_tail_reads_the_cut_once(pg_url):
    """A tail view compares each of the log's rows with the cut read once per statement: a
    function call in the filter ran once per row (2.4 µs each)."""
    pair, now, history = _pair_with_events(pg_url, range(60, 660, 3), status="received")
    _cut_reaches(pair, now - timedelta(seconds=30))
    with pair.engine.begin() as conn:  # 200 aged events move: 400 log rows before the cut
        conn.execute(
            update(E).where(E.c.id.in_([row["id"] for row in history])).values(status="completed")
        )
    calls = func.pg_stat_get_xact_function_calls(func.to_regproc(tail.CUT_FUNCTION))
    with pair.engine.begin() as conn:
        assert _logged(conn) == 2 * len(history)
        conn.exec_driver_sql("SET LOCAL track_functions = 'all'")
        conn.execute(select(func.count()).select_from(EDGES_TAIL.table("tail")))
        assert conn.execute(select(calls)).scalar() <= 3
    _exact(pair, now, 1)


def _function_rows(plan: dict, name: str) -> list[int]:
    """The rows each call of the function ``name`` returned in an EXPLAIN ANALYZE plan (its
    scan's, and those the scan's filter removed: the read's own condition)."""
    returned = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
    found = [returned] if plan.get("Function Name") == name else []
    for child in plan.get("Plans", []):
        found += _function_rows(child, name)
    return found


def test_a_narrowed_read_sums_only_the_rows_it_keeps(pg_url):
    """A read narrowed to an instance passes it to the tail's function, which sums only
    that instance's rows from the cut on (at 2,000 events a second the narrowed dashboard
    summed every instance's to keep one's); the numbers are the raw rows'."""
    pair, now, _ = _pair_with_events(pg_url, range(600, 3600, 7))
    _cut_reaches(pair, now - timedelta(seconds=60))
    # After the cut, whatever it reaches meanwhile: one group of rows per instance.
    young = [
        rs.event_row(now + timedelta(seconds=30), {**rs.SAMPLE_EVENT, "instance": n})
        for n in (0, 1, 2)
        for _ in range(4)
    ]
    rs.write(pair.engine, events=young)
    pair.clock.now = now + timedelta(minutes=1)
    reader = tail.recent_function(COUNTS_TAIL)
    returned = []

    def explained(conn, cursor, statement, parameters, context, executemany):
        if f"{reader}(" in statement:
            with cursor.connection.cursor() as own:  # the request's transaction: its snapshot
                own.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters)
                returned.extend(_function_rows(own.fetchone()[0][0]["Plan"], reader))

    event.listen(pair.engine, "before_cursor_execute", explained)
    try:
        pair.get(pair.on, f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[1]}")
    finally:
        event.remove(pair.engine, "before_cursor_execute", explained)
    assert returned and set(returned) == {1}, returned  # instance 1's group, not all three
    _exact(pair, pair.clock.now, 1)
