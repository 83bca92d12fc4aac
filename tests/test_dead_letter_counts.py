"""Dead-letter counts kept by triggers: exact after any write, read without the table."""

import logging
import uuid
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, event, func, insert, select, text, update

from host_example.tables import dead_letter_events as table
from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.rollups import dead_letter_counts

from . import rollup_support as rs
from .conftest import API_KEY, NOW, build_app

STATUSES = ("pending", "retrying", "resolved", "abandoned", "parked")
writes = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(st.sampled_from(STATUSES), max_size=6)),
        st.tuples(st.just("update"), st.tuples(st.integers(0, 5), st.sampled_from(STATUSES))),
        st.tuples(st.just("retry"), st.integers(0, 5)),
        st.tuples(st.just("delete"), st.integers(0, 5)),
        st.tuples(st.just("empty"), st.none()),
        st.tuples(st.just("compact"), st.none()),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def pair(db_url):
    pair = rs.Pair(db_url)
    assert pair.rollups.keeps_dead_letters
    return pair


def _oracle(engine) -> dict:
    """Plain Python over the rows: their statuses counted."""
    with engine.connect() as conn:
        return dict(Counter(conn.execute(select(table.c.status)).scalars()))


def _kept(engine):
    with engine.connect() as conn:
        return dead_letter_counts.read(conn)


def _apply(engine, operation, value, statuses: dict) -> None:
    """One write on dead_letter_events; ``statuses`` (id -> status) follows it in Python."""
    ids = sorted(statuses)
    with engine.begin() as conn:
        if operation == "insert" and value:
            rows = [{"id": uuid.uuid4(), "status": s, "created_at": NOW} for s in value]
            conn.execute(insert(table), rows)
            statuses.update({row["id"]: row["status"] for row in rows})
        elif operation == "update":
            chosen = ids[: value[0]]
            conn.execute(update(table).where(table.c.id.in_(chosen)).values(status=value[1]))
            statuses.update(dict.fromkeys(chosen, value[1]))
        elif operation == "retry":  # a change that leaves the status as it is
            chosen = ids[:value]
            conn.execute(
                update(table)
                .where(table.c.id.in_(chosen))
                .values(auto_retry_count=table.c.auto_retry_count + 1, status=table.c.status)
            )
        elif operation == "delete":
            conn.execute(delete(table).where(table.c.id.in_(ids[:value])))
            for key in ids[:value]:
                del statuses[key]
        elif operation == "empty":
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {table.name}"))
            else:
                conn.execute(delete(table))
            statuses.clear()
        elif operation == "compact":
            dead_letter_counts.compact(conn)


@given(steps=writes)
@rs.pair_examples(0.25)
def test_counts_follow_every_write(pair, steps):
    """After every insert, status change, unchanged update, delete, TRUNCATE and fold, the
    kept counts equal the statuses counted in Python (and a fold leaves one row each)."""
    pair.clear(NOW)
    statuses = {}
    for operation, value in steps:
        _apply(pair.engine, operation, value, statuses)
        expected = dict(Counter(statuses.values()))
        assert _kept(pair.engine) == expected == _oracle(pair.engine)
    with pair.engine.begin() as conn:
        dead_letter_counts.compact(conn)
        rows = conn.execute(select(func.count()).select_from(dead_letter_counts.counts)).scalar()
    assert _kept(pair.engine) == dict(Counter(statuses.values()))
    assert rows == len(set(statuses.values()))


def _responses(app) -> dict:
    client = app.test_client()
    headers = {"x-api-key": API_KEY}
    board = client.get("/api/v2/dashboard", headers=headers).get_json()["deadLetters"]
    ops = client.get("/api/v2/event-ops/metrics", headers=headers).get_json()["data"]
    scrape = client.get("/api/v2/dashboard/metrics", headers=headers).get_data(as_text=True)
    by_status = {
        line.split('"')[1]: int(float(line.split()[-1]))
        for line in scrape.splitlines()
        if line.startswith("omni_dead_letters{")
    }
    return {
        "pending": board["pending"],
        "total": board["total"],
        "eventOpsPending": ops["deadLettersPending"],
        "resolved": ops["deadLettersResolved"],
        "byStatus": {status: n for status, n in by_status.items() if n},
    }


def _expected(statuses: dict) -> dict:
    counts = Counter(statuses.values())
    return {
        "pending": counts["pending"],
        "total": len(statuses),
        "eventOpsPending": counts["pending"],
        "resolved": counts["resolved"],
        "byStatus": dict(counts),
    }


def _statements_during(engine, call) -> list[str]:
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_requests_read_the_counts_not_the_table(pair):
    """While rollups serve reads, the dashboard, /event-ops/metrics and a scrape read the
    kept counts (no statement touches dead_letter_events) and report what Python counts."""
    pair.clear(NOW)
    statuses = {}
    _apply(pair.engine, "insert", ["pending"] * 3 + ["resolved"] * 2 + ["parked"], statuses)
    pair.rollups.refresh()  # rollups serve reads (before, the host's own payloads do)
    _apply(pair.engine, "update", (1, "abandoned"), statuses)
    seen = _statements_during(pair.engine, lambda: _responses(pair.on))
    assert seen and not [s for s in seen if table.name in s]
    assert _responses(pair.on) == _expected(statuses) == _responses(pair.off)


def _drop_triggers(engine) -> None:
    """What a migration that recreates dead_letter_events does to the triggers."""
    on = f" ON {table.name}" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for operation in ("insert", "update", "delete"):
            name = f"{dead_letter_counts.PREFIX}dead_letter_counts_{operation}"
            conn.execute(text(f"DROP TRIGGER {name}{on}"))


def test_dropped_triggers_count_raw_until_a_refresh_puts_them_back(pair):
    """A migration that drops the triggers: reads notice and count raw (still exact);
    the next refresh recreates them with the counts of that moment."""
    pair.clear(NOW)
    statuses = {}
    _apply(pair.engine, "insert", ["pending", "retrying", "resolved"], statuses)
    pair.rollups.refresh()
    _drop_triggers(pair.engine)
    _apply(pair.engine, "insert", ["pending", "pending"], statuses)
    _apply(pair.engine, "delete", 1, statuses)
    assert _kept(pair.engine) is None
    seen = _statements_during(pair.engine, lambda: _responses(pair.on))
    assert [s for s in seen if table.name in s]
    assert _responses(pair.on) == _expected(statuses)
    pair.rollups.refresh()
    assert _kept(pair.engine) == dict(Counter(statuses.values()))
    _apply(pair.engine, "update", (2, "resolved"), statuses)
    assert _responses(pair.on) == _expected(statuses) == _responses(pair.off)


def test_reset_counts_again_what_writes_past_the_triggers_changed(pg_url):
    """PostgreSQL: a bulk load with the triggers bypassed (``session_replication_role =
    replica``, as loaders and restores do) leaves the counts behind; ``reset`` counts the
    dead letters again, and the dashboard agrees with rollups off after the refresh."""
    pair = rs.Pair(pg_url)
    pair.clear(NOW)
    statuses = {}
    _apply(pair.engine, "insert", ["pending", "resolved"], statuses)
    with pair.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        rows = [{"id": uuid.uuid4(), "status": "parked", "created_at": NOW} for _ in range(3)]
        conn.execute(insert(table), rows)
        conn.execute(delete(table).where(table.c.status == "pending"))
    assert _kept(pair.engine) == {"pending": 1, "resolved": 1}
    pair.rollups.reset()
    assert _kept(pair.engine) == _oracle(pair.engine) == {"resolved": 1, "parked": 3}
    pair.rollups.refresh()
    assert _responses(pair.on) == _responses(pair.off)


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_writers_during_folds_lose_nothing(pg_url):
    """PostgreSQL: writers insert and move dead letters in their own transactions while
    another connection folds the counts over and over; the counts stay exact."""
    pair = rs.Pair(pg_url)
    pair.clear(NOW)

    def writer(seed):
        statuses = {}
        for i in range(60):
            _apply(pair.engine, "insert", [STATUSES[(seed + i) % 5]] * 3, statuses)
            _apply(pair.engine, "update", (2, STATUSES[(seed * i) % 5]), statuses)

    def fold():
        with pair.engine.begin() as conn:
            dead_letter_counts.compact(conn)

    errors = rs.alongside([lambda seed=seed: writer(seed) for seed in (1, 2)], fold)
    assert not errors
    assert _kept(pair.engine) == _oracle(pair.engine)
    assert sum(_oracle(pair.engine).values()) == 2 * 60 * 3


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_without_the_right_to_create_triggers_counts_are_raw(pg_url, caplog):
    """PostgreSQL: a database user that does not own dead_letter_events gets rollups
    without kept counts, a warning that says what to grant, and exact numbers."""
    owner = rs.Pair(pg_url)
    owner.clear(NOW)
    statuses = {}
    _apply(owner.engine, "insert", ["pending", "resolved", "resolved"], statuses)
    _drop_triggers(owner.engine)
    with rs.database_role(pg_url, rs.READER_GRANTS) as url:
        with caplog.at_level(logging.WARNING):
            app = build_app(url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_DASHBOARD_ROLLUPS_REFRESH="cron")
        rollups = app.extensions["omni_dashboard"].rollups
        assert rollups.active and not rollups.keeps_dead_letters
        assert "grant the database user ownership of dead_letter_events" in caplog.text
        assert _responses(app) == _expected(statuses)
        app.extensions["omni_host"].engine.dispose()


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_raw_setting_removes_the_triggers(db_url):
    """OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS=raw: start-up drops the triggers an earlier
    start made, and the counts are read raw (exact); a bad value stops start-up."""
    pair = rs.Pair(db_url)
    with pair.engine.connect() as conn:
        assert dead_letter_counts.installed(conn)
    raw = rs.Pair(db_url, fresh=False, OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS="raw")
    with raw.engine.connect() as conn:
        assert not dead_letter_counts.installed(conn)
    assert not raw.rollups.keeps_dead_letters
    raw.clear(NOW)
    statuses = {}
    _apply(raw.engine, "insert", ["pending", "resolved"], statuses)
    raw.rollups.refresh()
    assert _kept(raw.engine) is None
    assert _responses(raw.on) == _expected(statuses)
    with pytest.raises(ConfigError, match="OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS"):
        build_app(db_url, OMNI_DASHBOARD_ROLLUPS="on", OMNI_DASHBOARD_ROLLUPS_DEAD_LETTERS="x")
    rs.Pair(db_url)  # back to triggers for the module's other tests


@pytest.mark.slow  # triggers installed, folded and dropped on PostgreSQL, seconds each
def test_a_writer_without_rights_on_the_counts_table_still_writes(pg_url):
    """PostgreSQL: the host's writer role may change dead letters (and only them): the
    triggers' function runs as the plugin's user, so its writes succeed and are counted."""
    pair = rs.Pair(pg_url)
    pair.clear(NOW)
    grants = [
        "GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {table.name} TO {{role}}",
    ]
    with rs.database_role(pg_url, grants) as url:
        writer = create_engine(url)
        statuses = {}
        _apply(writer, "insert", ["pending", "pending", "retrying"], statuses)
        _apply(writer, "update", (1, "resolved"), statuses)
        _apply(writer, "delete", 1, statuses)
        assert _kept(pair.engine) == dict(Counter(statuses.values())) == _oracle(pair.engine)
        _apply(writer, "empty", None, statuses)
        assert _kept(pair.engine) == {}
        writer.dispose()
