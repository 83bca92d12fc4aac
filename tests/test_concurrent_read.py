"""A read alongside the response: same snapshot, never waits for the pool, falls back."""

import logging
import threading
from concurrent.futures import Future

import pytest
from sqlalchemy import create_engine, event, text

from omni_dashboard_plugin.queries import concurrent_read
from omni_dashboard_plugin.queries.concurrent_read import ConcurrentRead
from omni_dashboard_plugin.sql.snapshot import snapshot

from .waiting import CEILING, finishes, pace, wait_until


@pytest.fixture
def engine(pg_url):
    engine = create_engine(pg_url, pool_size=2, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alongside_rows"))
        conn.execute(text("CREATE TABLE alongside_rows (n integer)"))
        conn.execute(text("INSERT INTO alongside_rows SELECT generate_series(1, 3)"))
    yield engine
    engine.dispose()


def _count(connection):
    return connection.execute(text("SELECT count(*) FROM alongside_rows")).scalar_one()


def _insert_two_elsewhere(engine):
    with engine.begin() as other:
        other.execute(text("INSERT INTO alongside_rows VALUES (4), (5)"))


def test_the_second_connection_reads_the_snapshot_of_the_response(engine):
    used = []

    def read(connection):
        used.append(connection)
        return _count(connection)

    with snapshot(engine) as conn:
        assert _count(conn) == 3  # the response's snapshot is taken here
        _insert_two_elsewhere(engine)
        pending = ConcurrentRead(conn, read)
        wait_until(lambda: used, "the worker to take the read")
        assert pending.result() == 3
        assert used and used[0] is not conn  # it did run on the second connection
    with engine.connect() as conn:
        assert _count(conn) == 5


def test_without_a_snapshot_the_second_connection_reads_committed_rows(engine):
    with engine.connect() as conn:  # READ COMMITTED: each statement sees what is committed
        assert _count(conn) == 3
        _insert_two_elsewhere(engine)
        assert ConcurrentRead(conn, _count).result() == 5


def test_it_never_waits_for_a_connection(engine):
    """A worker slow to get its connection loses the read to the response, which reads it
    on its own connection at once; the worker then gives its connection back unused."""
    main = threading.get_ident()
    checking_out, release, checked_in = threading.Event(), threading.Event(), threading.Event()

    def slow_checkout(*_):
        if threading.get_ident() != main:
            checking_out.set()
            release.wait()  # held until the response has read it itself

    def worker_checkin(*_):
        if threading.get_ident() != main:
            checked_in.set()

    event.listen(engine, "checkout", slow_checkout)
    event.listen(engine, "checkin", worker_checkin)
    used = []

    def read(connection):
        used.append(connection)
        return _count(connection)

    try:
        with snapshot(engine) as conn:
            pending = ConcurrentRead(conn, read)
            assert checking_out.wait(CEILING), "the worker never asked for a connection"
            # The worker is stuck getting its connection: the result comes all the same.
            assert finishes(pending.result, "the result while the worker waits") == 3
            assert used == [conn]
    finally:
        release.set()
    assert checked_in.wait(CEILING), "the worker kept its connection"
    assert used == [conn]
    wait_until(lambda: engine.pool.checkedout() == 0, "every connection back in the pool")


def test_a_read_collected_before_its_worker_began_takes_no_connection(engine, monkeypatch):
    """The response read it itself before the worker thread ran: the worker then checks
    out nothing (a checkout after the response counted against the next request)."""
    submitted = []

    class Late:
        """An executor whose thread begins only when the test says."""

        def submit(self, fn, *args):
            submitted.append((fn, args))
            return Future()

    monkeypatch.setattr(concurrent_read, "_worker", Late)
    with snapshot(engine) as conn:
        assert ConcurrentRead(conn, _count).result() == 3
    checkouts = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(1))
    ((begin, args),) = submitted
    assert begin(*args) is None
    assert checkouts == []


def test_a_full_pool_means_reading_on_the_response_connection(engine):
    """No worker queues for a connection of a full pool (it would hold a thread and,
    when one frees, a connection, for nothing)."""
    used, checkouts = [], []
    event.listen(engine, "checkout", lambda *_: checkouts.append(threading.get_ident()))

    def read(connection):
        used.append(connection)
        return _count(connection)

    with engine.connect() as busy, snapshot(engine) as conn:
        busy.execute(text("SELECT 1"))
        assert ConcurrentRead(conn, read).result() == 3
        assert used == [conn]
    pace(0.2, "time for a worker queued for a connection, wrongly, to take one")
    assert set(checkouts) == {threading.get_ident()}


def test_an_error_on_the_second_connection_falls_back_to_the_response_connection(engine, caplog):
    with snapshot(engine) as conn:
        tried = []

        def read(connection):
            if connection is not conn:
                tried.append(connection)
                raise RuntimeError("second connection broke")
            return _count(connection)

        pending = ConcurrentRead(conn, read)
        wait_until(lambda: tried, "the worker to try the read")
        with caplog.at_level(logging.WARNING):
            assert pending.result() == 3
    assert "second connection broke" in caplog.text


def test_sqlite_reads_on_the_response_connection(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alongside_rows (n integer)"))
        conn.execute(text("INSERT INTO alongside_rows VALUES (1), (2), (3)"))
    used = []

    def read(connection):
        used.append(connection)
        return _count(connection)

    with snapshot(engine) as conn:
        assert ConcurrentRead(conn, read).result() == 3
        assert used == [conn]
