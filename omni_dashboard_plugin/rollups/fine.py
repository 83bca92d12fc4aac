"""The recent rolled slots by ``FINE_SECONDS``: a window's unaligned edges, read cheaply.

A window that starts at an arbitrary instant (``now - 1 h``, ``now - 24 h``) begins inside
a slot, and the part of that slot inside the window is not in any rollup: read raw, it is
up to a slot of rows, 1.8 million at 2,000 events a second. For the slots of the last
``KEPT_DAYS`` days, each chunk of a refresh also stores the rows of the slots it rolls
grouped by ``FINE_SECONDS`` (one scan of the slots' source rows, a fine kind's dims), so a
reader takes that part in whole fine buckets and reads raw at most ``FINE_SECONDS`` of
rows at each end of the window. The state row ``fine`` holds the slot range stored; a
chunk extends it to the new watermark and drops the slots that left the last
``KEPT_DAYS``. What the slots hold is final when they are rolled (see the exactness
contract in docs/rollups.md), so their fine rows are too.
"""

from datetime import timedelta

from sqlalchemy import bindparam, delete, insert, update

from ..grid import FINE, SLOT, SLOTS_PER_DAY, slot_time
from .kinds import FINES, state
from .source import by_slot
from .statements import built

FINE_SECONDS = FINE // timedelta(seconds=1)
PER_SLOT = SLOT // FINE
KEPT_DAYS = 8
KEPT_SLOTS = KEPT_DAYS * SLOTS_PER_DAY
STATE_NAME = "fine"


def _rows(kind):
    """INSERT the source rows of ``[:since, :before)`` by fine bucket and the kind's dims."""
    table = kind.table("fine")
    rows = by_slot(kind, bindparam("since"), bindparam("before"), width=FINE_SECONDS)
    return insert(table).from_select(["bucket", *kind.dims, *kind.measures], rows)


def _older(kind):
    """DELETE the fine rows before fine bucket ``:low``."""
    table = kind.table("fine")
    return delete(table).where(table.c.bucket < bindparam("low"))


def keep(connection, stored: tuple[int, int] | None, low: int, high: int, target: int) -> None:
    """In a chunk that rolls slots ``[low, high)`` towards ``target``: store their fine rows
    within the last ``KEPT_SLOTS`` before ``target``, drop older ones, and record the range.
    ``stored`` is the range the state row held (``None``: none)."""
    first = max(low, target - KEPT_SLOTS)
    if stored is not None and stored[1] == low:
        start = stored[0]
    else:  # none yet, or slots were rolled without it (an earlier release): start again
        clear(connection)
        start = min(first, high)
    if start < target - KEPT_SLOTS:
        for kind in FINES:
            dropped = built(("fine older", kind.name), lambda kind=kind: _older(kind))
            connection.execute(dropped, {"low": (target - KEPT_SLOTS) * PER_SLOT})
        start = min(target - KEPT_SLOTS, high)
    if first < high:
        bounds = {"since": slot_time(first), "before": slot_time(high)}
        for kind in FINES:
            rows = built(("fine rows", kind.name), lambda kind=kind: _rows(kind))
            connection.execute(rows, bounds)
    values = {"start_slot": start, "watermark_slot": high}
    if stored is None:
        connection.execute(insert(state).values(name=STATE_NAME, **values))
    else:
        connection.execute(update(state).where(state.c.name == STATE_NAME).values(**values))


def clear(connection) -> None:
    """Drop every fine row (the state row goes with the rest of the state)."""
    for kind in FINES:
        connection.execute(delete(kind.table("fine")))
