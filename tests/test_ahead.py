"""A response reads the questions its endpoint's last two responses both asked in the
statement of its first question (rollups.ahead), with the same answers: every rollup kind
reads in one statement, a read-ahead question nobody asks changes nothing, and the
questions are remembered per endpoint and query string, as instants or as distances from
``now``."""

import re
from datetime import timedelta

import pytest

from omni_dashboard_plugin.cache import Recent
from omni_dashboard_plugin.reading import Reader
from omni_dashboard_plugin.rollups.ahead import Questions
from omni_dashboard_plugin.rollups.kinds import EVENT_CHANNELS, EVENT_SLOTS, KINDS
from omni_dashboard_plugin.rollups.reader import RawReader, RollupReader
from omni_dashboard_plugin.rollups.statements import Part, Question, run, run_many
from omni_dashboard_plugin.sql.snapshot import snapshot

from . import rollup_support as rs
from .conftest import NOW

WINDOW = (NOW - timedelta(days=2), NOW - timedelta(hours=5))
PATHS = (
    "/api/v2/dashboard",
    f"/api/v2/dashboard?instanceId={rs.INSTANCE_IDS[1]}&compare=previous_period",
    "/api/v2/event-ops/metrics",
    "/api/v2/automation-metrics",
)
# Statements of questions a response runs once read ahead: one per reader, but that
# /event-ops/metrics reads its p95 alongside (on PostgreSQL on a second connection, on
# SQLite inline, not learned: two statements, the values depending on the buckets), and on
# SQLite reads the host's fields on a connection of their own (not one snapshot with the
# host's: two readers).
READ_AHEAD = {
    ("postgresql", "/api/v2/event-ops/metrics"): 3,
    ("sqlite", "/api/v2/event-ops/metrics"): 4,
}
# A question's statement: the sum of its rows' counts (rollups.statements._build).
QUESTION = re.compile(r"sum\(anon_\d+\.n\)")


@pytest.fixture(scope="module")
def pair(db_url):
    pair = rs.Pair(db_url)
    rs.regular_history(pair, days=3, every_minutes=19, spec={**rs.SAMPLE_EVENT, "instance": 1})
    pair.rollups.refresh()
    return pair


def _questions(pair, path) -> int:
    """How many statements of questions one response of ``path`` runs."""
    with rs.statements(pair.engine, QUESTION.search) as found:
        pair.get(pair.on, path)
    return len(found)


@pytest.mark.parametrize("path", PATHS)
def test_a_third_response_reads_its_questions_in_one_statement(pair, path):
    """The first response asks one statement per question; from the third on (two
    responses asked the same questions) one per reader, and the numbers are the raw rows'."""
    pair.clock.now = NOW
    pair.rollups._questions = Questions()  # forget what earlier tests asked
    expected = READ_AHEAD.get((pair.engine.dialect.name, path), 1)
    first = _questions(pair, path)
    _questions(pair, path)
    assert first > expected
    assert _questions(pair, path) == expected
    pair.clock.now = NOW + timedelta(seconds=7)  # distances from now are remembered
    assert _questions(pair, path) == expected
    rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])


def test_every_kind_reads_in_one_statement(pair):
    """Each kind by all its dims and slot, and by nothing, in one UNION of every kind:
    the rows each question gets alone (the NULLs of dims a kind lacks are typed)."""
    asked = [
        (Question(kind.name, kind, None, None, by, (), by_slot), [Part("raw", None, None)])
        for kind in KINDS
        for by, by_slot in ((tuple(kind.dims), True), ((), False))
    ]
    with snapshot(pair.engine) as conn:
        together = run_many(conn, asked)
        alone = [run(conn, question, parts) for question, parts in asked]
    assert [sorted(rows, key=repr) for rows in together] == [
        sorted(rows, key=repr) for rows in alone
    ]
    assert any(len(rows) > 1 for rows in together)


def _sums(reader: Reader, asked) -> list:
    return [reader.sums(kind, since, until, by=by) for kind, since, until, by in asked]


def test_a_question_read_ahead_and_not_asked_changes_nothing(pair):
    """Two readers asked the same two questions; a third asks another first: all three are
    read in its one statement, the two it never asks change no answer, and the ones it asks
    after are answered without a statement. All equal the raw rows'."""
    now = pair.clock.now = NOW
    pair.rollups._questions = Questions()  # forget what earlier tests asked
    before = [
        (EVENT_SLOTS, now - timedelta(hours=1), None, ()),
        (EVENT_CHANNELS, now - timedelta(hours=24), None, ("channel",)),
    ]
    other = (EVENT_CHANNELS, now - timedelta(hours=30), now - timedelta(hours=2), ("status",))
    with snapshot(pair.engine) as conn:
        for _ in range(2):
            reader = pair.rollups.reader(conn, now, snapshot=True)
            assert isinstance(reader, RollupReader)
            _sums(reader, before)
        reader = pair.rollups.reader(conn, now, snapshot=True)
        with rs.statements(pair.engine, QUESTION.search) as found:
            [first] = _sums(reader, [other])
            [hour] = _sums(reader, before[:1])
        assert len(found) == 1
        raw = RawReader(conn)
        assert sorted(first) == sorted(_sums(raw, [other])[0])
        assert hour == _sums(raw, before[:1])[0]
        # It asked only the first of the two: the next reads that one ahead, not both.
        reader = pair.rollups.reader(conn, now, snapshot=True)
        with rs.statements(pair.engine, QUESTION.search) as found:
            assert sorted(_sums(reader, [other])[0]) == sorted(first)
            _sums(reader, before)
        assert len(found) == 2


def _ahead(memory: Questions, now) -> set:
    return {key for key, _ in memory.asking(now).ahead}


def _respond(memory: Questions, now, keys) -> None:
    asking = memory.asking(now)
    for key in keys:
        asking.note(EVENT_SLOTS, key)


def test_questions_are_read_ahead_once_two_responses_asked_them():
    """Outside a request every reader shares one scope: a question is read ahead once two
    responses in a row asked it, as an instant or at a distance from now (the bounds of
    one asked at both follow now), and is forgotten when a response does not ask it."""
    memory = Questions()
    fixed = ("event_slots", NOW - timedelta(days=3), NOW, (), (), False)

    def hour(now):
        return ("event_slots", now - timedelta(hours=1), None, (), (), False)

    _respond(memory, NOW, [fixed, hour(NOW)])
    assert _ahead(memory, NOW) == set()
    later = NOW + timedelta(minutes=5)
    _respond(memory, later, [fixed, hour(later)])
    last = NOW + timedelta(minutes=9)
    assert _ahead(memory, last) == {fixed, hour(last)}
    _respond(memory, last, [fixed])
    assert _ahead(memory, last) == {fixed}


def test_questions_are_remembered_per_endpoint_and_query_string(pair):
    """Each endpoint and query string has its own questions; the least recently used go
    when more are remembered than the memory holds."""
    memory = Questions(size=2)
    key = ("event_slots", None, None, (), (), False)
    for query in ("", "?channel=discord", ""):
        with pair.on.test_request_context(f"/api/v2/dashboard{query}"):
            _respond(memory, NOW, [key])
    with pair.on.test_request_context("/api/v2/dashboard"):
        assert _ahead(memory, NOW) == {key}
    with pair.on.test_request_context("/api/v2/dashboard?channel=slack"):
        assert _ahead(memory, NOW) == set()
        _respond(memory, NOW, [key])
    with pair.on.test_request_context("/api/v2/dashboard?channel=discord"):
        assert _ahead(memory, NOW) == set()  # the least recently used: forgotten


def test_a_part_read_alongside_inline_is_not_learned(pair):
    """A read alongside that runs on the response's own connection after all (its thread
    lost the race) shares the response's answers but is not learned: what responses read
    ahead does not depend on which side won."""
    now = pair.clock.now = NOW
    pair.rollups._questions = Questions()
    own = (EVENT_SLOTS, now - timedelta(hours=1), None, ())
    alongside = (EVENT_CHANNELS, now - timedelta(hours=24), None, ("channel",))
    with snapshot(pair.engine) as conn:
        for _ in range(2):
            reader = pair.rollups.reader(conn, now, snapshot=True)
            _sums(reader, [own])
            _sums(reader.on(conn), [alongside])
        reader = pair.rollups.reader(conn, now, snapshot=True)
        with rs.statements(pair.engine, QUESTION.search) as found:
            _sums(reader, [own])
            [first] = _sums(reader.on(conn), [alongside])
            assert _sums(reader, [alongside]) == [first]  # shared, not read again
        assert len(found) == 2


def test_the_statements_of_several_questions_kept_are_the_recently_used():
    """Their shapes are combinations that move with the clock: a bounded number is kept,
    the least recently used going first, and one still in use is not built again."""
    recent, builds = Recent(2), []

    def build(name):
        def make():
            builds.append(name)
            return object()

        return make

    a = recent.get_or(("a",), build("a"))
    recent.get_or(("b",), build("b"))
    assert recent.get_or(("a",), build("a")) is a  # used: now the most recent
    recent.get_or(("c",), build("c"))  # "b" goes
    assert len(recent) == 2
    assert recent.get_or(("a",), build("a")) is a
    recent.get_or(("b",), build("b"))
    assert builds == ["a", "b", "c", "b"]
