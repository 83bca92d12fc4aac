"""Omni's GET /events/analytics payload for a window, computed through a reader.

The host computes this payload itself with raw scans and knows only the ``instanceId``
filter; the plugin computes it for a ``channel`` filter (which the host cannot apply) and
from rollups while they serve reads, field by field as the host does.
"""

from dataclasses import dataclass

from ..reading import Reader
from ..rollups.kinds import CHANNEL_DETAILS, EVENT_DETAILS, EVENT_INSTANCES
from ..rounding import rounded_mean
from ..window import EventWindow
from .events import breakdown_rows, measure_totals

# The payload's fields: a host whose schema has exactly these, and no argument but those of
# the window (HOST_ARGUMENTS), may let the plugin compute it.
FIELDS = (
    "totalMessages",
    "successfulMessages",
    "failedMessages",
    "successRate",
    "avgProcessingTimeMs",
    "avgAgentTimeMs",
    "messageTypes",
    "errorStages",
    "instances",
)
TABLES = ("omni_events",)


@dataclass(frozen=True)
class StatusTotals:
    """Events of a window by outcome, with the sums their mean times come from."""

    count: int
    completed: int
    failed: int
    processing_sum: int
    processing_count: int
    agent_sum: int
    agent_count: int

    @property
    def success_rate(self) -> float:
        """completed / count as a percentage (0 without events)."""
        return self.completed / self.count * 100 if self.count else 0

    @property
    def mean_processing_ms(self) -> int | None:
        """Mean processing_time_ms, rounded half away from zero (``None`` without values)."""
        return rounded_mean(self.processing_sum, self.processing_count)


def status_totals(reader: Reader, window: EventWindow) -> StatusTotals:
    """The window's events by status, summed."""
    rows = breakdown_rows(reader, window)
    sums = measure_totals(rows, ("n", "failed", "proc_sum", "proc_n", "agent_sum", "agent_n"))
    completed = sum(row.n for row in rows if row.status == "completed")
    return StatusTotals(
        count=sums["n"],
        completed=completed,
        failed=sums["failed"],
        processing_sum=sums["proc_sum"],
        processing_count=sums["proc_n"],
        agent_sum=sums["agent_sum"],
        agent_count=sums["agent_n"],
    )


def _instances(reader: Reader, window: EventWindow, totals: StatusTotals) -> dict[str, int]:
    if window.instance_id is not None:  # every event of the window is of that instance
        return {str(window.instance_id): totals.count} if totals.count else {}
    rows = reader.sums(
        EVENT_INSTANCES, window.since, window.until, by=("instance_id",), where=window.where
    )
    return {str(row.instance_id): row.n for row in rows if row.instance_id is not None}


def _details(reader: Reader, window: EventWindow) -> tuple[dict, dict]:
    """(events per content type, per error stage) of the window; NULL is left out."""
    kind = CHANNEL_DETAILS if window.instance_id is None else EVENT_DETAILS
    rows = reader.sums(
        kind, window.since, window.until, by=("content_type", "error_stage"), where=window.where
    )
    types: dict[str, int] = {}
    stages: dict[str, int] = {}
    for row in rows:
        if row.content_type is not None:
            types[row.content_type] = types.get(row.content_type, 0) + row.n
        if row.error_stage is not None:
            stages[row.error_stage] = stages.get(row.error_stage, 0) + row.n
    return types, stages


def event_analytics(reader: Reader, window: EventWindow) -> dict:
    """Every field of Omni's /events/analytics for the window."""
    totals = status_totals(reader, window)
    types, stages = _details(reader, window)
    return {
        "totalMessages": totals.count,
        "successfulMessages": totals.completed,
        "failedMessages": totals.failed,
        "successRate": totals.success_rate,
        "avgProcessingTimeMs": totals.mean_processing_ms,
        "avgAgentTimeMs": rounded_mean(totals.agent_sum, totals.agent_count),
        "messageTypes": types,
        "errorStages": stages,
        "instances": _instances(reader, window, totals),
    }
