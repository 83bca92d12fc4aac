"""The recent rolled slots by fine bucket: a window's unaligned edges, read cheaply.

A window that starts at an arbitrary instant (``now - 1 h``, ``now - 24 h``) begins inside
a slot, and the part of that slot inside the window is not in any rollup: read raw, it is
up to a slot of rows, 1.8 million at 2,000 events a second. Each chunk of a refresh also
stores the events of the slots it rolls by fine bucket (``grid.FINE``, 10 seconds), in two
families of dims (those of the tail's edges and counts families): the edges' for the
slots of the last 8 days, the counts', whose rows are many more (every instance), for the
last two days and two hours (``KEPT_SLOTS``). A reader takes the part of a window's edge
within them in whole fine buckets and reads raw at most a fine bucket of rows at each end
of the window.

The state row :data:`STATE_NAME` holds ``[start, end)``: the chunk that ended at ``end``
stored the fine rows of each family for the slots of ``[max(start, end - kept), end)``
(see :func:`kept`), and dropped its older ones, in the transaction that moved the
watermark to ``end``, so a read sees rows and range of one moment. What the slots hold is
final when they are rolled (see the exactness contract in docs/rollups.md), so their fine
rows are too.
"""

from sqlalchemy import bindparam, delete, insert, update

from ..grid import FINE, FINES_PER_SLOT, SLOTS_PER_DAY, SLOTS_PER_HOUR, slot_time
from ..sql.built import built
from .kinds import AUTOMATIONS_FINE, COUNTS_FINE, EDGES_FINE, FINES, Kind, state
from .source import by_slot

# How many slots before the end of the range each family keeps: the edges' cover windows
# a week and a day back (a dashboard compared with the previous week), the counts' those
# of an instance two days back (the last 24 hours compared with the 24 before), the
# automations' the last 24 hours.
KEPT_SLOTS = {
    EDGES_FINE.name: 8 * SLOTS_PER_DAY,
    COUNTS_FINE.name: 2 * SLOTS_PER_DAY + 2 * SLOTS_PER_HOUR,
    AUTOMATIONS_FINE.name: SLOTS_PER_DAY + 2 * SLOTS_PER_HOUR,
}
# The state row names the bucket width and the families, so that a release that changes
# either starts its fine rows again rather than reading rows it did not store (the names
# without their common suffix: a state row's name holds 40 characters).
STATE_NAME = f"fine:{FINE.seconds}s:" + "+".join(kind.name.removesuffix("_fine") for kind in FINES)


def kept(kind: Kind, stored: tuple[int, int] | None, end: int) -> tuple[int, int] | None:
    """The slots whose fine rows of ``kind`` (a fine kind) a read may use: of the stored
    range, the family's last slots, up to ``end`` (the rolled range's)."""
    if stored is None:
        return None
    return max(stored[0], stored[1] - KEPT_SLOTS[kind.name]), min(stored[1], end)


def by_bucket(kind):
    """SELECT fine bucket, dims, measures of the fine kind's source rows of
    ``[:since, :before)``: what a chunk stores."""
    return by_slot(kind, bindparam("since"), bindparam("before"), width=FINE.seconds)


def _rows(kind):
    """INSERT :func:`by_bucket`'s rows into the kind's fine table."""
    table = kind.table("fine")
    return insert(table).from_select(["bucket", *kind.dims, *kind.measures], by_bucket(kind))


def _older(kind):
    """DELETE the fine rows before fine bucket ``:low``."""
    table = kind.table("fine")
    return delete(table).where(table.c.bucket < bindparam("low"))


def keep(connection, stored: tuple[int, int] | None, low: int, high: int, target: int) -> None:
    """In a chunk that rolls slots ``[low, high)`` of a refresh towards ``target``: store
    their fine rows of each family's last slots before ``high``, drop older ones, and
    record the range. ``stored`` is the range the state row held (``None``: none).

    The series starts no earlier than the longest-kept family's last slots before
    ``target``: a refresh that catches up over a long history stores no fine rows that its
    later chunks would drop (it scanned every event twice more, for nothing)."""
    if stored is not None and stored[1] == low:
        start = stored[0]
    else:  # none yet, or slots were rolled without it (an earlier release): start again
        clear(connection)
        connection.execute(delete(state).where(state.c.name.like("fine:%")))
        stored, start = None, low
    start = min(max(start, target - max(KEPT_SLOTS.values())), high)
    for kind in FINES:
        first = max(start, high - KEPT_SLOTS[kind.name])
        dropped = built(("fine older", kind.name), lambda kind=kind: _older(kind))
        connection.execute(dropped, {"low": first * FINES_PER_SLOT})
        if max(low, first) < high:
            rows = built(("fine rows", kind.name), lambda kind=kind: _rows(kind))
            since = slot_time(max(low, first))
            connection.execute(rows, {"since": since, "before": slot_time(high)})
    values = {"start_slot": start, "watermark_slot": high}
    if stored is None:
        connection.execute(insert(state).values(name=STATE_NAME, **values))
    else:
        connection.execute(update(state).where(state.c.name == STATE_NAME).values(**values))


def clear(connection) -> None:
    """Drop every fine row (the state row goes with the rest of the state)."""
    for kind in FINES:
        connection.execute(delete(kind.table("fine")))
