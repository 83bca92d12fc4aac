"""What is rolled up: each kind is a GROUP BY over one of Omni's tables, by time slot.

A kind names its source table, the time column that places a row in a 15-minute UTC
slot, the dimensions it groups by and the measures it sums. Every measure is additive
(a count or a sum), so the rows of any set of slots, hours, days and raw rows combine by
``SUM`` into exactly what one scan of the source would give.
"""

from dataclasses import dataclass, field, replace

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    case,
    func,
)
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import iterate

from ..sql.constructs import json_array_length, sum_where
from ..sql.tables import automation_logs, automations, event_payloads, instances, omni_events
from .plan import LEVELS

# The layout version is part of every name: a release that changes what is stored rolls
# into new tables instead of misreading old ones (drop older omni_dashboard_r* tables).
LAYOUT = 5
PREFIX = f"omni_dashboard_r{LAYOUT}_"
metadata = MetaData()
# The views of the tail kinds (PostgreSQL only; created by .tail, not by metadata.create_all).
views = MetaData()

state = Table(
    f"{PREFIX}rollup_state",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("start_slot", BigInteger, nullable=False),
    Column("watermark_slot", BigInteger, nullable=False),
)


def latency_coarse(value: ColumnElement) -> ColumnElement:
    """A monotone bucket of a millisecond value, finer for small values (64 per tier).

    Tiers are 16, 256, 4096 and 65536 ms wide, so a bucket never holds more distinct
    values than its width and the percentile search reads one or two buckets' values.
    """
    return case(
        (value < 1024, value // 16),
        (value < 16384, 64 + value // 256),
        (value < 262144, 128 + value // 4096),
        else_=192 + value // 65536,
    )


def latency_bucket(ms: int) -> int:
    """The bucket :func:`latency_coarse` puts a non-negative ``ms`` in."""
    for tier, (limit, width) in enumerate(((1024, 16), (16384, 256), (262144, 4096))):
        if ms < limit:
            return 64 * tier + ms // width
    return 192 + ms // 65536


@dataclass(frozen=True)
class Kind:
    """One rollup: ``dims`` and ``measures`` map a column name to its expression on the
    source; measures are aggregates whose partial results add up.

    ``rolled_from`` names a finer kind (same source and rows, a superset of the dims and
    measures) whose slot rows a refresh sums instead of scanning the source again.

    ``shares_edges``: a reader reads the kind's raw edges (rows outside the rolled slots)
    once per response, by slot, and shares them among its questions; worth it for kinds a
    response asks several times, the others read their raw rows with each question.
    ``edges_from`` is a kind (same source and rows, a superset of the dims and measures)
    whose raw edge rows serve this kind too, so that the kinds naming it scan the raw tail
    once per response.

    ``indexes``: the columns of each index of the slot, hour and day tables. Reads are by bucket
    range, so the bucket leads; a dim after it that a read filters on is matched in the
    index, and only the matching rows are fetched.

    ``tail`` is a kind (same source and rows, a superset of the dims and measures) that
    triggers keep as the source changes (:mod:`.tail`): it answers the raw tail.

    ``fine`` is a kind (same source and rows, a superset of the dims and measures) whose
    rows of recent rolled slots a refresh also keeps by fine bucket (see :mod:`.fine`): a
    window's unaligned edge within those slots is read from them, leaving at most a fine
    bucket of rows at each end to read raw.

    ``cascade`` and ``set_null`` map a dim to the parent key it references, following the
    foreign key's ON DELETE action: deleting a parent deletes the source rows of any age
    (rolled rows of a parent that is gone are left out) or sets the dim NULL (they count
    as NULL).
    """

    name: str
    source: Table
    time: ColumnElement
    dims: dict
    measures: dict
    where: ColumnElement | None = None
    indexes: tuple[tuple[str, ...], ...] = (("bucket",),)
    cumulative: bool = False
    rolled_from: str | None = None
    cascade: dict = field(default_factory=dict)
    set_null: dict = field(default_factory=dict)
    shares_edges: bool = False
    edges_from: "Kind | None" = None
    tail: "Kind | None" = None
    fine: "Kind | None" = None

    def table(self, level: str) -> Table:
        """The rollup table of ``level``: 'slot', 'hour', 'day', or 'total' (cumulative kinds:
        one row per dims over a stored slot range, for reads that span everything); a tail
        kind's are 'kept' (the rows its refresh folded) and 'tail', the view that reads (and
        writes, into 'kept') them together with the log's (see .tail); 'fine', the table of
        its fine kind (of a fine kind, its own: see .fine)."""
        return _TABLES[(self.name, level)]

    @property
    def levels(self) -> tuple[str, ...]:
        """The levels this kind keeps."""
        if any(self is kind for kind in TAILS):
            return ("kept",)
        rolled = ("slot", *(level for level, _ in reversed(LEVELS)))
        return (*rolled, "total") if self.cumulative else rolled


E = omni_events
L = automation_logs
P = event_payloads
_count = func.count()
_timed = E.c.processing_time_ms

_EVENT_MEASURES = {
    "n": _count,
    "failed": sum_where(E.c.status == "failed"),
    "proc_sum": func.coalesce(func.sum(E.c.processing_time_ms), 0),
    "proc_n": func.count(E.c.processing_time_ms),
    "agent_sum": func.coalesce(func.sum(E.c.agent_latency_ms), 0),
    "agent_n": func.count(E.c.agent_latency_ms),
}
_SLOT_MEASURES = {m: _EVENT_MEASURES[m] for m in ("n", "failed")}
_COUNT = {"n": _count}


def _tail(name: str, dims: tuple[str, ...], measures: dict) -> Kind:
    """A kind of omni_events kept by triggers, not rolled up (see .tail). Like the source,
    not the rollups, its instance_id is set NULL when the instance goes (the trigger sees
    that update)."""
    return Kind(name, E, E.c.received_at, {d: E.c[d] for d in dims}, measures)


# The event kinds' tails in three families, so that a read scans the fewest rows that
# answer it (at 100M events a slot holds every combination of the dims: 70 for the edges'
# four against 1,500 for all six).
EDGES_TAIL = _tail("edges_tail", ("status", "error_stage", "channel", "direction"), _EVENT_MEASURES)
DETAILS_TAIL = _tail(
    "details_tail", ("instance_id", "channel", "content_type", "error_stage"), _COUNT
)
COUNTS_TAIL = _tail(
    "counts_tail", ("instance_id", "channel", "direction", "status"), _EVENT_MEASURES
)
EVENT_TAILS = (EDGES_TAIL, DETAILS_TAIL, COUNTS_TAIL)


# The recent rolled slots by fine bucket (see .fine), in two of the tail's families: the
# counts, breakdowns and timelines of every window that starts or ends between two slot
# boundaries (the last hour's, the last 24 hours', and those they are compared with) read
# their edges from them, those filtered on an instance from the second.
EDGES_FINE = replace(EDGES_TAIL, name="edges_fine")
COUNTS_FINE = replace(COUNTS_TAIL, name="counts_fine", indexes=(("bucket", "instance_id"),))
EVENT_FINES = (EDGES_FINE, COUNTS_FINE)


def _covering(dims: tuple[str, ...], measures: dict, kinds: tuple[Kind, ...]) -> Kind | None:
    """The first of ``kinds`` (fewest rows first) with every one of the dims and measures."""
    return next(
        (k for k in kinds if set(dims) <= set(k.dims) and set(measures) <= set(k.measures)),
        None,
    )


def _events(
    name: str,
    dims: tuple[str, ...],
    measures: dict,
    index: str | None = None,
    *,
    cumulative: bool = True,
    shares_edges: bool = True,
    **options,
) -> Kind:
    """A kind of omni_events by ``received_at``, grouped by its columns ``dims``
    (cumulative and sharing its raw edges unless told not to; its tail kept in the first
    of ``EVENT_TAILS`` that covers it); ``index``: the dim its slot, hour and day tables
    are indexed on after the bucket. Rows of an instance that is deleted count as NULL (the
    foreign key is ON DELETE SET NULL)."""
    options.setdefault("tail", _covering(dims, measures, EVENT_TAILS))
    options.setdefault("fine", _covering(dims, measures, EVENT_FINES))
    return Kind(
        name,
        E,
        E.c.received_at,
        {d: E.c[d] for d in dims},
        measures,
        indexes=(("bucket", index),) if index else (("bucket",),),
        cumulative=cumulative,
        set_null={"instance_id": instances.c.id} if "instance_id" in dims else {},
        shares_edges=shares_edges,
        **options,
    )


# Not rolled up (no tables): the raw edges that `events`, `event_channels` and
# `event_slots` share
# (the kinds with an instance dim read their own, by instance: grouping every response's
# edges by instance costs more than it saves).
EVENT_EDGES = _events(
    "event_edges",
    ("status", "error_stage", "channel", "direction"),
    _EVENT_MEASURES,
    cumulative=False,
    shares_edges=False,
)
EVENTS = _events("events", ("status", "error_stage"), _EVENT_MEASURES, edges_from=EVENT_EDGES)
# What a filter on an instance reads: the event totals, by channel, direction and status.
EVENT_COUNTS = _events(
    "event_counts",
    ("instance_id", "channel", "direction", "status"),
    _EVENT_MEASURES,
    "instance_id",
)
# ... and a filter on a channel, or none.
EVENT_CHANNELS = _events(
    "event_channels",
    ("channel", "direction", "status"),
    _EVENT_MEASURES,
    "channel",
    rolled_from="event_counts",
    edges_from=EVENT_EDGES,
)
# Events and failures per slot, of a channel or of all: the timelines' one row per slot.
EVENT_SLOTS = _events(
    "event_slots",
    ("channel",),
    _SLOT_MEASURES,
    "channel",
    rolled_from="event_channels",
    edges_from=EVENT_EDGES,
)
# ... and those of an instance: the timelines of a filter on one (its edges are those of
# `event_counts`, which the same responses read).
INSTANCE_SLOTS = _events(
    "instance_slots",
    ("instance_id", "channel"),
    _SLOT_MEASURES,
    "instance_id",
    cumulative=False,
    rolled_from="event_counts",
    edges_from=EVENT_COUNTS,
)
# Content types and error stages (analytics' `messageTypes`, `errorStages`) of an instance
# (its raw edges serve `event_instances` and `channel_details` too) ...
_DETAILS = ("content_type", "error_stage")
EVENT_DETAILS = _events(
    "event_details", ("instance_id", "channel", *_DETAILS), _COUNT, "instance_id"
)
# Events per instance (analytics' `instances`), of every channel or of one.
EVENT_INSTANCES = _events(
    "event_instances",
    ("instance_id", "channel"),
    _COUNT,
    "channel",
    rolled_from="event_counts",
    edges_from=EVENT_DETAILS,
)
# ... and of a channel, or of all.
CHANNEL_DETAILS = _events(
    "channel_details",
    ("channel", *_DETAILS),
    _COUNT,
    "channel",
    rolled_from="event_details",
    edges_from=EVENT_DETAILS,
)
# processing_time_ms by coarse bucket, then by value within the buckets a percentile needs.
_LATENCY_DIMS = {"coarse": latency_coarse(_timed)}
LATENCY_COARSE = Kind(
    "latency_coarse",
    E,
    E.c.received_at,
    _LATENCY_DIMS,
    _COUNT,
    where=_timed.is_not(None),
    cumulative=True,
    rolled_from="latency",
)
# Their tails: by coarse bucket, and by bucket and value.
LATENCY_COARSE_TAIL = replace(
    LATENCY_COARSE, name="latency_coarse_tail", cumulative=False, rolled_from=None
)
LATENCY_TAIL = replace(
    LATENCY_COARSE_TAIL, name="latency_tail", dims={**_LATENCY_DIMS, "value": _timed}
)
LATENCY_COARSE = replace(LATENCY_COARSE, tail=LATENCY_COARSE_TAIL)
LATENCY = replace(
    LATENCY_COARSE,
    name="latency",
    dims={**_LATENCY_DIMS, "value": _timed},
    indexes=(("coarse", "bucket"),),
    rolled_from=None,
    tail=LATENCY_TAIL,
)
AUTOMATIONS = Kind(
    "automations",
    L,
    L.c.created_at,
    dims={"status": L.c.status, "automation_id": L.c.automation_id},
    measures={
        "n": _count,
        "actions": func.coalesce(func.sum(json_array_length(L.c.actions_executed)), 0),
        "time_sum": func.coalesce(func.sum(L.c.execution_time_ms), 0),
        "time_n": func.count(L.c.execution_time_ms),
    },
    cumulative=True,
    cascade={"automation_id": automations.c.id},
    shares_edges=True,
)
# Its tail, kept by triggers on automation_logs (its logs go with a deleted automation, as
# the rows they were folded from: no parent to follow).
AUTOMATIONS_TAIL = replace(
    AUTOMATIONS, name="automations_tail", cumulative=False, cascade={}, shares_edges=False
)
# ... and its recent rolled slots by fine bucket (the last 24 hours' failures start inside
# a slot).
AUTOMATIONS_FINE = replace(AUTOMATIONS_TAIL, name="automations_fine")
AUTOMATIONS = replace(AUTOMATIONS, tail=AUTOMATIONS_TAIL, fine=AUTOMATIONS_FINE)
FINES = (*EVENT_FINES, AUTOMATIONS_FINE)
PAYLOADS = Kind(
    "payloads",
    P,
    P.c.timestamp,
    dims={},
    measures={"n": _count, "bytes": func.coalesce(func.sum(P.c.payload_size_compressed), 0)},
)
PAYLOAD_DELETIONS = Kind(
    "payload_deletions",
    P,
    P.c.deleted_at,
    dims={},
    measures={"n": _count, "bytes": func.coalesce(func.sum(P.c.payload_size_compressed), 0)},
    where=P.c.deleted_at.is_not(None),
)

# Each kind comes after the kind it is rolled from.
KINDS = (
    EVENTS,
    EVENT_COUNTS,
    EVENT_CHANNELS,
    EVENT_SLOTS,
    INSTANCE_SLOTS,
    EVENT_INSTANCES,
    EVENT_DETAILS,
    CHANNEL_DETAILS,
    LATENCY,
    LATENCY_COARSE,
    AUTOMATIONS,
    PAYLOADS,
    PAYLOAD_DELETIONS,
)
BY_NAME = {kind.name: kind for kind in KINDS}
EVENT_SOURCE_TAILS = (*EVENT_TAILS, LATENCY_COARSE_TAIL, LATENCY_TAIL)
TAILS = (*EVENT_SOURCE_TAILS, AUTOMATIONS_TAIL)


def _read_columns(kinds) -> list[str]:
    """The names of the source columns that the kinds' time, dims, measures and filter read."""
    names: list[str] = []
    for kind in kinds:
        expressions = [kind.time, *kind.dims.values(), *kind.measures.values()]
        expressions += [kind.where] if kind.where is not None else []
        for expression in expressions:
            for element in iterate(expression):
                if (
                    isinstance(element, Column)
                    and element.table is kind.source
                    and element.name not in names
                ):
                    names.append(element.name)
    return names


@dataclass(frozen=True, eq=False)  # one of each, compared and hashed by identity
class Logged:
    """A source table whose tail kinds triggers keep (see .tail): ``log`` is the table its
    triggers append, per changed row, the columns its tail kinds read and a sign (+1 a row
    that is now there, -1 one that is no longer); ``name`` names the log, the triggers and
    their functions. ``cascaded``: a dim the host sets NULL on rows of any age (deleting
    its parent)."""

    name: str
    kinds: tuple[Kind, ...]
    log: Table
    cascaded: str | None = None

    @property
    def source(self) -> Table:
        """The table the triggers are on."""
        return self.kinds[0].source

    @property
    def time(self) -> ColumnElement:
        """The column that places a row in a slot, and before or after the cut."""
        return self.kinds[0].time

    @property
    def columns(self) -> list[str]:
        """The columns the log copies."""
        return [c.name for c in self.log.c if c.name != "sign"]


def _logged(name: str, kinds: tuple[Kind, ...], cascaded: str | None = None) -> Logged:
    source = kinds[0].source
    log = Table(
        f"{PREFIX}{name}_log",
        metadata,
        Column("sign", SmallInteger, nullable=False),
        *(Column(c, source.c[c].type) for c in _read_columns(kinds)),
    )
    return Logged(name, kinds, log, cascaded)


# The sources whose tails are kept: omni_events (deleting an instance sets its events'
# instance_id NULL) and automation_logs.
EVENT_LOG = _logged("tail", EVENT_SOURCE_TAILS, "instance_id")
AUTOMATION_LOG = _logged("tail_automations", (AUTOMATIONS_TAIL,))
LOGGED = (EVENT_LOG, AUTOMATION_LOG)
# The tail's cut (see .tail): rows dated before it are kept (the kept rows and the logs), rows
# from it on are read from their source; one row, written by the install (the margin
# its triggers were created with) and moved by each fold.
tail_cut = Table(
    f"{PREFIX}tail_cut",
    metadata,
    Column("margin_seconds", Integer, nullable=False),
    Column("cut", DateTime),
)
# What the database's clock read before a transaction id was handed out: every later id's
# writes happen after that moment (see .tail).
tail_marks = Table(
    f"{PREFIX}tail_marks",
    metadata,
    Column("xid", BigInteger, nullable=False),
    Column("clock", DateTime, nullable=False),
)


def _column_type(expression):
    kind = expression.type
    return Uuid() if isinstance(kind, Uuid) else kind.__class__() if kind else Integer()


def _bucketed_columns(kind: Kind) -> list[Column]:
    """A bucket, the kind's dims and its measures."""
    columns = [Column("bucket", BigInteger, nullable=False)]
    columns += [Column(d, _column_type(expr)) for d, expr in kind.dims.items()]
    return columns + [Column(m, BigInteger, nullable=False) for m in kind.measures]


def _build_tables() -> dict:
    tables = {}
    for kind in FINES:
        name = f"{PREFIX}{kind.name}"
        indexes = [Index(f"{name}_{'_'.join(c)}_idx", *c) for c in kind.indexes]
        tables[(kind.name, "fine")] = Table(name, metadata, *_bucketed_columns(kind), *indexes)
    for kind in TAILS:
        columns = _bucketed_columns(kind)
        tables[(kind.name, "tail")] = Table(f"{PREFIX}{kind.name}", views, *columns)
    for kind in KINDS + TAILS:
        for level in kind.levels:
            name = f"{PREFIX}{kind.name}_{level}"
            columns = [Column(d, _column_type(expr)) for d, expr in kind.dims.items()]
            columns += [Column(m, BigInteger, nullable=False) for m in kind.measures]
            if level == "total":
                indexes = [Index(f"{name}_idx", *kind.dims)]
            else:
                columns.insert(0, Column("bucket", BigInteger, nullable=False))
                indexes = [
                    Index(f"{name}_{'_'.join(columns)}_idx", *columns) for columns in kind.indexes
                ]
            tables[(kind.name, level)] = Table(name, metadata, *columns, *indexes)
        if kind.fine is not None:
            tables[(kind.name, "fine")] = tables[(kind.fine.name, "fine")]
    return tables


_TABLES = _build_tables()
