"""Sums of a kind's measures over a window: from raw rows, or from rollups plus raw rows.

Both readers answer the same question with the same result, so every query of the plugin
is written once against :meth:`RawReader.sums` and runs on either.
"""

import copy
from datetime import datetime
from operator import add

from ..grid import RESOLUTION, SLOTS_PER_DAY, slot_of, slot_time
from ..reading import Reader, is_many
from ..sql.snapshot import without_parallel_workers
from . import dead_letter_counts, fine
from .ahead import Asking
from .kinds import Kind
from .opening import Sources
from .plan import plan, split
from .state import UNREAD, RolledRange, first_whole_slot
from .statements import Part, Question, run, run_many

# The rollups lag when the raw tail after the rolled slots spans more than this many slots
# (a first refresh under way, one stopped midway): see :func:`lags`.
LAGGING_TAIL_SLOTS = SLOTS_PER_DAY


def lags(rolled: RolledRange, now: datetime) -> bool:
    """Whether reads at ``now`` should read raw rows only: while the rollups lag, the raw
    tail is long, and reading it beside the rolled slots costs more than rollups off (its
    edges grouped by every dim and slot, days of them; counts that PostgreSQL answers from
    a small index when they span the whole table, a scan of the table's rows otherwise)."""
    return slot_of(now) - rolled.end > LAGGING_TAIL_SLOTS


class RawReader(Reader):
    """Sums straight from the source table (rollups off)."""

    def __init__(self, connection, *, dead_letters: bool = False):
        super().__init__(connection)
        # Whether :meth:`dead_letters` reads counts kept by triggers.
        self.keeps_dead_letters = dead_letters

    def _sum(self, kind: Kind, key: tuple) -> list:
        name, since, until, by, where, by_slot = key
        return self._answer(Question(name, kind, since, until, by, where, by_slot))

    def dead_letters(self) -> dict[str, int] | None:
        """Dead letters per status from :mod:`.dead_letter_counts`, or ``None`` (count
        them raw) when it does not keep them or its triggers are not in place."""
        if not self.keeps_dead_letters:
            return None
        return self.remembered(("dead letters",), lambda: dead_letter_counts.read(self.connection))

    def on(self, connection) -> "RawReader":
        """This reader on ``connection``, one that reads the same snapshot (a part of the
        response read alongside): itself when it is its own connection (so a part read
        there after all shares its answers), else a new reader like it."""
        return self if connection is self.connection else self._like(connection)

    def _like(self, connection) -> "RawReader":
        return RawReader(connection, dead_letters=self.keeps_dead_letters)

    def _answer(self, question: Question) -> list:
        return run(self.connection, question, [Part("raw", question.since, question.until, True)])


class RollupReader(RawReader):
    """Sums from the rollup tables for the rolled range and the source for the rest.

    The source rows outside the rolled slots of a kind that ``shares_edges``, its edges (the
    oldest row's slot when retention cut into it, and the raw tail after the rolled slots),
    are read once per kind and ``where``, by slot, and shared by every question of the
    response (and by the kinds that name the same ``edges_from``).

    ``totals`` (cumulative kind name -> stored slot range) may be given only when every
    statement of the reader sees one snapshot: a total table then answers a long range,
    corrected by the day and slot rows where the ranges differ.

    ``oldest`` holds the oldest time of sources read already in this snapshot (see
    :func:`.opening.open_read`, which also turns parallel workers off: ``workers_off``);
    a source not in it is probed when first read, and told to ``sources``.
    """

    def __init__(
        self,
        connection,
        rolled: RolledRange,
        totals: dict | None = None,
        *,
        dead_letters: bool = False,
        tail: int | None = None,
        now: datetime | None = None,
        oldest: dict | None = None,
        sources: Sources | None = None,
        workers_off: bool = False,
        asking: Asking | None = None,
    ):
        super().__init__(connection, dead_letters=dead_letters)
        if not workers_off:
            without_parallel_workers(connection)
        self.rolled = rolled
        self.totals = totals or {}
        # The tail tables answer the raw tail when they keep every slot from its start.
        self.tail = tail if tail is not None and tail <= rolled.end else None
        self.now = now
        self._oldest = oldest or {}
        self._sources = sources
        self._lows: dict = {}
        self._edges: dict = {}
        self._asking = asking
        # Read with the first question (rollups.ahead).
        self._ahead = [] if asking is None else asking.ahead

    def _like(self, connection) -> "RollupReader":
        return RollupReader(
            connection,
            self.rolled,
            self.totals,
            dead_letters=self.keeps_dead_letters,
            tail=self.tail,
            now=self.now,
            oldest=self._oldest,
            sources=self._sources,
        )

    def on(self, connection) -> "RawReader":
        """As :meth:`RawReader.on`; on its own connection a reader that shares its answers
        but learns nothing for reading ahead: a part read alongside that runs here after all
        (a race its thread lost) is not one of the response's own questions, and learning
        it on some responses only would vary what the next ones read ahead."""
        if connection is not self.connection:
            return self._like(connection)
        unlearned = copy.copy(self)
        unlearned._asking, unlearned._ahead = None, []
        return unlearned

    def _ask(self, kind: Kind, key: tuple) -> list:
        if self._asking is not None:
            self._asking.note(kind, key)
        return super()._ask(kind, key)

    def _sum(self, kind: Kind, key: tuple) -> list:
        ahead, self._ahead = self._ahead, []
        others = [(k, other) for k, other in ahead if k != key and k not in self._answers]
        questions = [Question(k[0], other, *k[1:]) for k, other in [(key, kind), *others]]
        first, *rest = self._answer_many(questions)
        for (k, other), found in zip(others, rest, strict=True):
            self._remember(other, k, found)
        return first

    def _answer_many(self, questions: list[Question]) -> list[list]:
        """The rows of each question, read in one statement with the edges they lack."""
        plans = [self._plan(question) for question in questions]
        # (source name, where) -> the source and the first asking question's rolled range
        fetches: dict = {}
        for question, (_, spans, rolled) in zip(questions, plans, strict=True):
            if spans and self._cached_edges(question.kind, question.where) is None:
                source = question.kind.edges_from or question.kind
                fetches.setdefault((source.name, question.where), (source, rolled))
        # The edges read without a filter answer every filter of their source.
        fetches = {k: v for k, v in fetches.items() if not (k[1] and (k[0], ()) in fetches)}
        asked = []
        for (_, where), (source, (head, tail)) in fetches.items():
            fetch = Question(source.name, source, None, None, tuple(source.dims), where, True)
            outside = [Part("raw", None, head), Part("raw", tail, None)]
            asked.append((fetch, self._tailed(source, outside)))
        for question, (parts, _, _) in zip(questions, plans, strict=True):
            if parts:
                asked.append((question, self._tailed(question.kind, parts)))
        found = iter(run_many(self.connection, asked) if asked else [])
        for key in fetches:
            self._edges[key] = next(found)
        answers = []
        for question, (parts, spans, _) in zip(questions, plans, strict=True):
            rows = next(found) if parts else []
            if spans:
                edges = self._cached_edges(question.kind, question.where)
                assert edges is not None  # read above
                rows = _combine(question, rows, edges, spans)
            if question.width:
                # A key whose rows all went (retention, corrections) sums to n = 0: the
                # source has no row for it, so neither has the answer.
                count = question.width + list(question.kind.measures).index("n")
                rows = [row for row in rows if row[count]]
            answers.append(rows)
        return answers

    def _plan(self, question: Question) -> tuple[list[Part], list | None, tuple]:
        """The parts a statement reads for ``question``, the slot spans the shared edges
        answer (``None``: none, every part is read), and the rolled range's first and end
        instants."""
        start, end = self._range(question.kind)
        parts = self._parts(question, start, end)
        head, tail = slot_time(start), slot_time(end)
        if start >= end or not question.kind.shares_edges:
            return parts, None, (head, tail)
        spans, rest = [], []
        for part in parts:
            span = _edge_span(part, head, tail)
            if span is None:
                rest.append(part)
            else:
                spans.append(span)
        return (rest, spans, (head, tail)) if spans else (parts, None, (head, tail))

    def _keeps_tail(self, kind: Kind) -> bool:
        return self.tail is not None and kind.tail is not None

    def _ends_late(self, kind: Kind, start: datetime, until: datetime) -> bool:
        """Whether the kind's tail tables answer the raw tail from ``start`` to ``until``
        for less than a raw scan: the rows after until, subtracted, span less time."""
        late = self.now is None or self.now - until <= until - start
        return late and self._keeps_tail(kind)

    def _tailed(self, kind: Kind, parts: list[Part]) -> list[Part]:
        """``parts`` with the open raw tail read from the kind's tail table, when kept."""
        if not self._keeps_tail(kind):
            return parts
        start = slot_time(self.rolled.end)
        return [
            Part("tail", self.rolled.end)
            if part.source == "raw" and part.low == start and part.high is None and part.sign > 0
            else part
            for part in parts
        ]

    def _cached_edges(self, kind: Kind, where: tuple) -> list | None:
        """The kind's edge rows for ``where`` from what this reader already read: its own,
        or those read without a filter, or those of ``kind.edges_from``; ``None`` if none."""
        key = (kind.name, where)
        if key not in self._edges:
            for source in (kind, kind.edges_from) if kind.edges_from else (kind,):
                rows = self._edges.get((source.name, where))
                if rows is None and (source.name, ()) in self._edges:
                    rows = _matching(self._edges[(source.name, ())], list(source.dims), where)
                if rows is not None:
                    self._edges[key] = rows if source is kind else _project(rows, source, kind)
                    break
        return self._edges.get(key)

    def _range(self, kind: Kind) -> tuple[int, int]:
        """The kind's rolled slots ``[start, end)`` for this response."""
        return max(self.rolled.start, self._low_cut(kind)), self.rolled.end

    def _parts(self, question: Question, start: int, end: int) -> list[Part]:
        family = question.kind.fine
        slots = None if family is None else fine.kept(family, self.rolled.fine, end)
        window = plan(question.since, question.until, start, end, fine=slots)
        parts = [Part("fine", a, b) for a, b in window.fine]
        for low, high, inclusive in window.raw:
            if (
                low == slot_time(end)
                and high is not None
                and self._ends_late(question.kind, low, high)
            ):
                # The tail table keeps whole slots: all of them, less the rows after until.
                parts.append(Part("raw", low, None))
                parts.append(Part("raw", high + RESOLUTION * inclusive, None, sign=-1))
            else:
                parts.append(Part("raw", low, high, inclusive))
        span, rolled = self.totals.get(question.kind.name), window.rolled
        if (
            span
            and rolled
            and not question.by_slot
            and abs(rolled[0] - span[0]) + abs(rolled[1] - span[1]) < (rolled[1] - rolled[0]) // 2
        ):
            parts.append(Part("total"))
            # [a, b) = [F, T) - [F, a) + [T, b); a reversed range counts negatively.
            signed = [(span[0], rolled[0], -1), (span[1], rolled[1], 1)]
        else:
            signed = [(*rolled, 1)] if rolled else []
        for first, last, sign in signed:
            if first > last:
                first, last, sign = last, first, -sign
            for level, ranges in split(first, last, by_slot=question.by_slot):
                parts += [Part(level, a, b, sign=sign) for a, b in ranges]
        return parts

    def _low_cut(self, kind) -> int:
        """The first slot of the source still whole (see :func:`.state.first_whole_slot`):
        older ones may have lost rows to retention, so they are read raw."""
        key = (kind.source.name, kind.time.name)
        if key not in self._lows:
            oldest = self._oldest.get(key, UNREAD)
            if oldest is UNREAD and self._sources is not None:
                self._sources.learn(key)
            first = first_whole_slot(self.connection, kind, self.rolled.version, oldest)
            self._lows[key] = self.rolled.end if first is None else first
        return self._lows[key]


def _aligned(moment: datetime) -> bool:
    return slot_time(slot_of(moment)) == moment


def _edge_span(part: Part, head: datetime, tail: datetime) -> tuple[float, float] | None:
    """The slots ``[a, b)`` of a raw part that lies within the edges (before ``head`` or
    from ``tail`` on) on slot boundaries, so the edge rows answer it; else ``None``."""
    if part.source != "raw" or part.sign < 0:
        return None
    low, high = part.low, part.high
    # A raw part's bounds are instants (a rolled part's are bucket numbers).
    assert not isinstance(low, int) and not isinstance(high, int)
    if low is not None and not _aligned(low):
        return None
    first = float("-inf") if low is None else slot_of(low)
    if high is not None and not part.inclusive and high <= head and _aligned(high):
        return first, slot_of(high)
    if high is None and low is not None and low >= tail:
        return first, float("inf")
    return None


def _matching(edges: list, dims: list, where: tuple) -> list:
    """The edge rows whose dims match ``where`` as SQL would (NULL matches only IS NULL)."""

    def matches(row) -> bool:
        for d, v in where:
            value = row[dims.index(d)]
            if v is None:
                if value is not None:
                    return False
            elif value is None or (value not in v if is_many(v) else value != v):
                return False
        return True

    return [row for row in edges if matches(row)]


def _project(rows: list, source: Kind, kind: Kind) -> list:
    """Edge rows of ``source`` summed to ``kind``'s dims, slot and measures."""
    dims = [list(source.dims).index(d) for d in kind.dims] + [len(source.dims)]
    measures = [len(source.dims) + 1 + list(source.measures).index(m) for m in kind.measures]
    totals: dict = {}
    for row in rows:
        _add(totals, tuple([row[i] for i in dims]), [row[i] for i in measures])
    return [(*key, *values) for key, values in totals.items()]


def _combine(question: Question, found: list, edges: list, spans: list) -> list:
    """The statement's rows plus the edge rows of ``spans``, summed by the question's keys."""
    dims = list(question.kind.dims)
    positions = [dims.index(d) for d in question.by]
    width = question.width
    # The statement groups by the question's keys: one row per key.
    totals: dict = {row[:width]: row[width:] for row in found}
    at = len(dims)
    for row in edges:
        slot = row[at]
        if any(a <= slot < b for a, b in spans):
            key = tuple([row[p] for p in positions] + ([slot] if question.by_slot else []))
            values = row[at + 1 :]
            current = totals.get(key)
            totals[key] = values if current is None else tuple(map(add, current, values))
    if not totals and not width:
        return [(0,) * len(question.kind.measures)]
    return [key + values for key, values in totals.items()]


def _add(totals: dict, key: tuple, values) -> None:
    current = totals.get(key)
    if current is None:
        totals[key] = list(values)
    else:
        for i, value in enumerate(values):
            current[i] += value
