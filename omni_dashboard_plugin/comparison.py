"""The windows a comparison reads: the period before a window, or the same one a week
earlier, with the same filters."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from .grid import RESOLUTION, SLOT
from .window import EventWindow

PREVIOUS_PERIOD = "previous_period"
PREVIOUS_WEEK = "previous_week"
COMPARISONS = (PREVIOUS_PERIOD, PREVIOUS_WEEK)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Earlier:
    """A comparison window: ``window`` (its ``until`` inclusive), how much earlier than the
    compared one it starts (``shift``), and its bounds as reported: ``[since, until)`` for
    the previous period, ``[since, until]`` for the previous week."""

    window: EventWindow
    shift: timedelta
    since: datetime
    until: datetime

    @property
    def slots(self) -> int:
        """``shift`` in 15-minute slots, rounded half up: a slot ``s`` of this window is
        drawn in the compared timeline's bucket holding slot ``s + slots``."""
        return (self.shift + SLOT / 2) // SLOT


def recent(args, now: datetime, length: timedelta) -> tuple[EventWindow, Earlier]:
    """The last ``length`` before ``now`` with the filters of ``args``, and the earlier
    window its ``compare`` argument names (the dashboard's ``events.previous``)."""
    window = EventWindow.from_args({**args, "allTime": True}, now).between(now - length, None)
    return window, earlier(window, args["compare"], now)


def earlier(window: EventWindow, compare: str, now: datetime) -> Earlier:
    """The comparison window of ``window`` (which has a ``since``) at ``now``.

    ``previous_period``: the window of the same length (to ``until``, else ``now``) that
    ends where ``window`` starts, half-open so that no event is in both. ``previous_week``:
    ``window`` 7 days earlier, its open ``until`` taken as ``now``.
    """
    start = window.since
    if start is None:
        raise ValueError("an all-time window has no earlier period")
    end = window.until if window.until is not None else now
    if compare == PREVIOUS_PERIOD:
        length = max(end - start, timedelta(0))
        since = start - length
        return Earlier(window.between(since, start - RESOLUTION), length, since, start)
    since, until = start - WEEK, end - WEEK
    return Earlier(window.between(since, until), WEEK, since, until)
