"""PostgreSQL: a rollup read opens with one statement (the state table's presence, parallel
workers off, the oldest row of each source the endpoint reads), not five, and keeps its
numbers exact and the raw fallback's parallel workers."""

from datetime import timedelta

import pytest
from sqlalchemy import text

from omni_dashboard_plugin.rollups.reader import RawReader, RollupReader

from . import rollup_support as rs
from .conftest import NOW

DASHBOARD = f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[1]}&compare=previous_period"
WINDOW = (NOW - timedelta(days=3), NOW - timedelta(days=1))


def _history(pair):
    rs.regular_history(pair, days=3, every_minutes=23, spec={**rs.SAMPLE_EVENT, "instance": 1})


@pytest.fixture(scope="module")
def pair(pg_url):
    pair = rs.Pair(pg_url)
    _history(pair)
    pair.rollups.refresh()
    return pair


def _opening_or_probe(statement: str) -> bool:
    """The opening, or a statement of its own that it replaces."""
    alone = ("SELECT min(", "SET LOCAL max_parallel_workers_per_gather")
    return "set_config(" in statement or statement.startswith(alone)


def test_a_later_response_opens_with_one_statement_and_reads_the_same_numbers(pair):
    """The endpoint's first response probes its sources one by one; every later one asks
    the state table, the workers and the oldest rows in one statement, and no other."""
    pair.get(pair.on, DASHBOARD)
    for _ in range(2):
        with rs.statements(pair.engine, _opening_or_probe) as found:
            pair.get(pair.on, DASHBOARD)
        assert len(found) == 1, found
        [opening] = found
        assert "to_regclass" in opening and "set_config" in opening
        # The dashboard reads events and automation logs: both oldest rows in the opening.
        assert "min(omni_events.received_at)" in opening
        assert "min(automation_logs.created_at)" in opening
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


def test_another_endpoint_probes_only_what_it_reads(pair):
    """An endpoint that reads events only does not probe the automation logs (its parts
    read alongside, on connections of their own, turn their workers off there)."""
    path = "/api/v2/event-ops/metrics"
    pair.get(pair.on, path)
    with rs.statements(pair.engine, lambda statement: "set_config(" in statement) as found:
        pair.get(pair.on, path)
    [opening] = found
    assert "min(omni_events.received_at)" in opening
    assert "automation_logs" not in opening


def test_a_retention_cut_between_responses_is_read_raw_from_the_opening(pair):
    """The oldest row the opening reads tells a later response that retention cut into
    the oldest rolled slot: its numbers stay those of the raw rows."""
    path = "/api/v2/events/analytics?allTime=true"
    try:
        assert pair.get(pair.on, path) == pair.get(pair.off, path)  # learned
        rs.retention(pair.engine, NOW - timedelta(days=2, minutes=7))
        with rs.statements(pair.engine, _opening_or_probe) as found:
            assert pair.get(pair.on, path) == pair.get(pair.off, path)
        assert len(found) == 1, found
    finally:
        _history(pair)
        pair.rollups.refresh()


def _reader_and_workers(pair, before: str):
    """The reader made on a fresh snapshot whose session set the workers to ``before``,
    and the workers setting the transaction has after it."""
    with pair.engine.connect() as conn:
        conn.execute(text(f"SET max_parallel_workers_per_gather = {before}"))
        conn.commit()
        conn.execution_options(isolation_level="REPEATABLE READ")
        reader = pair.rollups.reader(conn, pair.clock(), snapshot=True)
        workers = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
        conn.rollback()
        conn.execute(text("RESET max_parallel_workers_per_gather"))
        conn.commit()
        return type(reader), workers


def test_a_rollup_read_has_no_parallel_workers_and_a_raw_one_keeps_the_hosts(pair):
    """Workers off while rollups are read; a response that reads raw rows after all
    (before the first refresh) keeps the session's own setting."""
    assert _reader_and_workers(pair, "3") == (RollupReader, "0")
    pair.rollups.reset()
    try:
        assert _reader_and_workers(pair, "3") == (RawReader, "3")
    finally:
        pair.rollups.refresh()
