"""The host's write path with the tail kept (PostgreSQL): one narrow log row per changed
row and nothing else, rows of any age that a cascade or retention touches left out, and an
install over the statement-level triggers of the previous release migrating in place."""

from datetime import timedelta

import pytest
from sqlalchemy import delete, event, func, insert, select, text, update

from host_example.tables import instances, omni_events
from omni_dashboard_plugin.rollups import tail, vacuum
from omni_dashboard_plugin.rollups.kinds import EDGES_TAIL, EVENT_LOG, LOGGED, TAILS

from . import rollup_support as rs
from .conftest import NOW
from .test_tail import _kept, _oracle, _start

# Slow: the triggers over every kind of write, and an install migrating them.
pytestmark = pytest.mark.slow

E = omni_events


@pytest.fixture(scope="module")
def pair(pg_url):
    return rs.Pair(pg_url)


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _kept_rows(engine) -> int:
    return sum(_count(engine, kind.table("kept")) for kind in TAILS)


def test_each_write_appends_to_the_log_only(pair):
    """An insert appends one log row, a status move two (the old row out, the new in), an
    update of a column no tail reads none; the kept tables do not change until a refresh
    folds the log, and every read stays exact meanwhile."""
    pair.clear(NOW)
    rs.write(
        pair.engine,
        events=[
            rs.event_row(NOW - timedelta(minutes=m), rs.SAMPLE_EVENT) for m in range(0, 120, 7)
        ],
    )
    pair.rollups.refresh()
    assert _count(pair.engine, EVENT_LOG.log) == 0
    kept = _kept_rows(pair.engine)
    row = rs.event_row(NOW - timedelta(minutes=2), {**rs.SAMPLE_EVENT, "status": "received"})
    with pair.engine.begin() as conn:
        conn.execute(insert(E).values(**row))
    assert _count(pair.engine, EVENT_LOG.log) == 1
    with pair.engine.begin() as conn:
        conn.execute(update(E).where(E.c.id == row["id"]).values(status="processing"))
    with pair.engine.begin() as conn:
        conn.execute(update(E).where(E.c.id == row["id"]).values(chat_id="delivered"))
    assert _count(pair.engine, EVENT_LOG.log) == 3
    assert _kept_rows(pair.engine) == kept
    first = _start(pair.engine)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    rs.assert_same(pair, (NOW - timedelta(hours=3), NOW), rs.INSTANCE_IDS[0])
    pair.rollups.refresh()
    assert _count(pair.engine, EVENT_LOG.log) == 0
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)


def test_cascades_and_retention_log_only_the_kept_slots(pair):
    """Deleting an instance sets its events of every age NULL, and retention deletes old
    rows: only rows of the kept slots reach the log, and the numbers stay exact."""
    pair.clear(NOW)
    spec = {**rs.SAMPLE_EVENT, "instance": 1}
    old = [rs.event_row(NOW - timedelta(days=2, minutes=m), spec) for m in range(0, 300, 10)]
    recent = [rs.event_row(NOW - timedelta(minutes=m), spec) for m in (3, 5, 8)]
    rs.write(pair.engine, events=old + recent)
    pair.rollups.refresh()
    first = _start(pair.engine)
    with pair.engine.begin() as conn:
        conn.execute(delete(instances).where(instances.c.id == rs.INSTANCE_IDS[1]))
    assert _count(pair.engine, EVENT_LOG.log) == 2 * len(recent)
    rs.retention(pair.engine, NOW - timedelta(days=1))
    assert _count(pair.engine, EVENT_LOG.log) == 2 * len(recent)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    rs.assert_same(pair, (NOW - timedelta(days=3), NOW), rs.INSTANCE_IDS[0])


def _previous_release(engine) -> None:
    """What the release before kept the tail with: statement-level triggers calling
    ``omni_dashboard_r5_tail_keep`` and plain tables where the views are now."""
    tail.uninstall(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION omni_dashboard_r5_tail_keep() RETURNS trigger "
                "LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$"
            )
        )
        for op in ("insert", "update", "delete", "truncate"):
            conn.execute(
                text(
                    f"CREATE TRIGGER omni_dashboard_r5_tail_{op} AFTER {op} ON omni_events "
                    "FOR EACH STATEMENT EXECUTE FUNCTION omni_dashboard_r5_tail_keep()"
                )
            )
        for kind in TAILS:
            kept = kind.table("kept").name
            conn.execute(text(f"CREATE TABLE {kind.table('tail').name} (LIKE {kept})"))
        state = tail.state
        conn.execute(insert(state).values(name=tail.STATE_NAME, start_slot=0, watermark_slot=0))


def test_install_migrates_the_statement_triggers_of_the_previous_release(pair):
    """An install over the previous release's statement-level triggers and tail tables drops
    them, creates the views and the log's triggers, and forgets the tail: reads take it raw
    (exact) until the next refresh seeds the kept tables."""
    pair.clear(NOW)
    at = lambda minutes: NOW - timedelta(minutes=minutes)  # noqa: E731
    rs.write(pair.engine, events=[rs.event_row(at(m), rs.SAMPLE_EVENT) for m in range(0, 200, 9)])
    pair.rollups.refresh()
    _previous_release(pair.engine)
    rs.write(pair.engine, events=[rs.event_row(at(4), {**rs.SAMPLE_EVENT, "instance": 1})])
    assert pair.rollups.install()
    with pair.engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'omni_dashboard_r5_tail%' "
                "UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'omni_dashboard_r5_tail%'"
            )
        ).scalars()
        current = {tail.CUT_FUNCTION}
        for logged, named in zip(LOGGED, tail.NAMED, strict=True):
            current |= {*tail.functions_of(logged), *map(named.trigger, named.operations)}
        assert set(left) == current
        kinds = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = :name"),
            {"name": EDGES_TAIL.table("tail").name},
        ).scalar()
        assert kinds == "v"
    assert pair.watermark().tail is None
    rs.assert_same(pair, (at(300), at(0)), rs.INSTANCE_IDS[1])
    pair.rollups.refresh()
    first = pair.watermark().tail
    assert first is not None
    rs.write(pair.engine, events=[rs.event_row(at(2), rs.SAMPLE_EVENT)])
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)
    rs.assert_same(pair, (at(300), at(0)), rs.INSTANCE_IDS[0])


def test_a_refresh_replaces_no_view_that_is_current(pair):
    """Every refresh checks the tail's objects; it replaces a view (an exclusive lock that
    readers of the view wait for) only when its definition is not this release's."""
    pair.rollups.refresh()
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    views = [kind.table("tail").name for kind in TAILS]
    event.listen(pair.engine, "before_cursor_execute", seen)
    try:
        pair.rollups.refresh()
        assert not [s for s in statements if "VIEW" in s.upper()]
        with pair.engine.begin() as conn:
            conn.execute(text(f"COMMENT ON VIEW {views[0]} IS 'an earlier release'"))
        pair.rollups.refresh()
    finally:
        event.remove(pair.engine, "before_cursor_execute", seen)
    replaced = [s for s in statements if s.startswith("CREATE OR REPLACE VIEW")]
    assert [s.split()[4] for s in replaced] == [views[0]]
    first = _start(pair.engine)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)


def _vacuums(engine) -> dict[str, int]:
    """How many times each of the tables a refresh rewrites was vacuumed by hand."""
    with engine.connect() as conn:
        return {
            table.name: conn.execute(
                select(func.pg_stat_get_vacuum_count(func.to_regclass(table.name)))
            ).scalar()
            for table in vacuum.CHURNED
        }


@pytest.mark.parametrize(("logged", "cut_back"), [(300, False), (12_000, True)])
def test_a_refresh_vacuums_what_its_fold_deleted(pair, logged, cut_back):
    """The fold deletes the log's rows and rewrites the kept ones; the refresh then vacuums
    every table it rewrote, so that the next writes reuse the log's pages whether or not
    autovacuum runs, and the numbers stay exact. It cuts a table's empty end (an exclusive
    lock, which every read of the tail waits for) only past vacuum.TRUNCATE_FROM_BYTES:
    the pages of a fold of a few rows stay, those of a burst go back."""
    pair.clear(NOW)
    pair.rollups.refresh()
    spec = {**rs.SAMPLE_EVENT, "instance": 1}
    # Received before the database's clock less the margin: every insert is logged.
    rs.write(
        pair.engine,
        events=[rs.event_row(NOW - timedelta(seconds=s), spec) for s in range(logged)],
    )
    pages = select(func.pg_relation_size(func.to_regclass(EVENT_LOG.log.name)))
    with pair.engine.connect() as conn:
        assert _count(pair.engine, EVENT_LOG.log) == logged
        size = conn.execute(pages).scalar()
    assert (size > vacuum.TRUNCATE_FROM_BYTES) == cut_back
    before = _vacuums(pair.engine)
    pair.rollups.refresh()
    assert _count(pair.engine, EVENT_LOG.log) == 0
    with pair.engine.connect() as conn:
        assert conn.execute(pages).scalar() == (0 if cut_back else size)
    after = _vacuums(pair.engine)
    assert {name for name in after if after[name] > before[name]} == set(after)
    first = _start(pair.engine)
    assert _kept(pair.engine, first) == _oracle(pair.engine, first)


def _options(engine) -> dict[str, list[str]]:
    """Each churned table's storage options, as pg_class holds them."""
    classes = text("SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = to_regclass(:n)")
    with engine.connect() as conn:
        return {t.name: conn.execute(classes, {"n": t.name}).scalar() for t in vacuum.CHURNED}


def test_the_install_tells_every_vacuum_to_keep_the_churned_tables_pages(pair, caplog):
    """Each table a fold rewrites carries vacuum_truncate=false, so that a host's
    autovacuum does not cut its empty end either (an ACCESS EXCLUSIVE lock every read of
    the tail waits behind). An install over tables that lack it (an earlier release's)
    sets it on those; one over tables that carry it alters nothing (altering a table
    makes every session plan its statements on it again)."""
    assert all(vacuum.KEEP_PAGES in options for options in _options(pair.engine).values())
    reset = [table.name for table in vacuum.CHURNED[::4]]
    with pair.engine.begin() as conn:
        for name in reset:
            conn.exec_driver_sql(f"ALTER TABLE {name} RESET (vacuum_truncate)")
    assert {n for n, o in _options(pair.engine).items() if vacuum.KEEP_PAGES not in o} == set(reset)
    with caplog.at_level("INFO", logger="omni_dashboard_plugin.rollups.service"):
        assert pair.rollups.install()
    altered = [r.getMessage() for r in caplog.records if "rollup table option" in r.getMessage()]
    assert altered == [
        f"rollup table option: ALTER TABLE {name} SET ({vacuum.KEEP_PAGES})"
        for name in sorted(reset)
    ]
    assert all(vacuum.KEEP_PAGES in options for options in _options(pair.engine).values())
    caplog.clear()
    with caplog.at_level("INFO", logger="omni_dashboard_plugin.rollups.service"):
        assert pair.rollups.install()
    assert not [r for r in caplog.records if "rollup table option" in r.getMessage()]
