"""What a refresh costs: transactions that follow the rows, not the calendar, and on SQLite
transactions short enough that the host's writers never time out waiting for the lock."""

import random
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, exc, insert

from host_example.tables import omni_events
from omni_dashboard_plugin.grid import SLOTS_PER_DAY, slot_of

from . import rollup_support as rs
from .conftest import NOW

# Slow: refreshes over rows spread across centuries, and a writer beside one.
pytestmark = pytest.mark.slow

ANCIENT = datetime(1, 1, 1)
WINDOW = (NOW - timedelta(days=2), NOW - timedelta(hours=3))
# Recent history: an event, a log and a payload every 97 minutes over two days.
RECENT = [NOW - timedelta(minutes=m) for m in range(0, 2 * 24 * 60, 97)]


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


def refresh_transactions(engine):
    """Collect the refresh's chunk transactions meanwhile (the statement that opens each:
    SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock)."""
    return rs.statements(
        engine,
        lambda statement: (
            statement.startswith("BEGIN IMMEDIATE") or "pg_try_advisory_xact_lock" in statement
        ),
    )


def _day_groups(moments) -> int:
    """How many UTC days (a chunk's most) hold one of ``moments`` before the horizon."""
    target = slot_of(NOW - rs.HORIZON)
    return len({slot_of(m) // SLOTS_PER_DAY for m in moments if slot_of(m) < target})


@rs.pair_examples(0.06)  # six at full strength: each example refreshes two apps
@given(
    ancient=st.lists(
        st.tuples(
            st.datetimes(min_value=ANCIENT, max_value=NOW - timedelta(days=3)),
            st.sampled_from(("event", "log", "payload")),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_refresh_from_scratch_costs_transactions_per_row_not_per_day(pair, ancient):
    """A few rows spread over centuries (and two days of recent ones): a refresh from
    scratch takes at most one transaction per UTC day holding a row, plus the last stretch
    and the one that finds it caught up; the answers equal rollups off."""
    pair.clear(NOW)
    dated = {kind: [at for at, which in ancient if which == kind] for kind in ("event", "log")}
    rs.write(
        pair.engine,
        events=[rs.event_row(at, rs.SAMPLE_EVENT) for at in RECENT + dated["event"]],
        logs=[
            rs.log_row(at, {"status": "failed", "actions": [], "time": 9})
            for at in RECENT + dated["log"]
        ],
        payloads=[rs.payload_row(at, 70) for at in RECENT]
        + [rs.payload_row(at, 5) for at, which in ancient if which == "payload"],
    )
    bound = _day_groups(RECENT + [at for at, _ in ancient]) + 2
    with refresh_transactions(pair.engine) as transactions:
        # On a refresh that walks the calendar, `bound` chunks end centuries short.
        pair.rollups.refresh(max_chunks=bound)
    assert pair.watermark().watermark_slot == slot_of(NOW - rs.HORIZON)
    assert len(transactions) <= bound
    # (all-time analytics over centuries would exceed the bucket cap: a 422 either way)
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[0], keep=lambda url: "allTime" not in url)


def test_a_sqlite_refresh_lets_a_writer_in_within_half_a_second(tmp_path):
    """A host writer inserts a row every 50 ms, with a busy timeout of 0.5 s, through a
    refresh from scratch of 30 days of events (1,000 a day) on a file database: the
    refresh's transactions are short and it steps aside between them, so the writer never
    gets `database is locked`."""
    url = f"sqlite:///{tmp_path / 'omni.db'}"
    pair = rs.Pair(url)
    pair.clear(NOW)
    draw = random.Random(32)
    rs.write(
        pair.engine,
        events=[
            rs.event_row(
                NOW - timedelta(minutes=draw.uniform(40, 30 * 24 * 60)),
                {
                    **rs.SAMPLE_EVENT,
                    "instance": draw.randrange(4),
                    "processing": draw.randrange(9000),
                },
            )
            for _ in range(30_000)
        ],
    )
    writer = create_engine(url, connect_args={"timeout": 0.5})
    done, written, locked = threading.Event(), [], []

    def write():
        while not done.wait(0.05):
            row = rs.event_row(NOW, rs.SAMPLE_EVENT) | {"id": uuid.uuid4()}
            try:
                with writer.begin() as conn:
                    conn.execute(insert(omni_events), row)
                written.append(row)
            except exc.OperationalError as error:
                locked.append(str(error.orig))

    thread = threading.Thread(target=write)
    thread.start()
    try:
        report = pair.rollups.refresh()
    finally:
        done.set()
        thread.join(60)
        writer.dispose()
    assert report.chunks >= 30 and written  # the writer wrote while the refresh ran
    assert locked == []
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[0])
