"""The numbers behind the Prometheus metrics, read through one reader (so from rollups).

Every number is all-time or current, as a scrape wants them: Prometheus derives rates and
windows itself.
"""

from collections.abc import Collection
from dataclasses import dataclass

from ..reading import Reader
from ..rollups.kinds import AUTOMATIONS, EVENT_CHANNELS, LATENCY, LATENCY_COARSE, latency_bucket
from .dead_letters import dead_letters_by_status
from .instances import instances_by_state

# Upper bounds (ms) of the processing-time histogram: each starts a latency bucket of the
# rollups, so that "<= bound" is the buckets below it plus the values equal to it.
PROCESSING_BOUNDS_MS = tuple(16 * 2**k for k in range(16))  # 16 ms .. 524.288 s
AUTOMATION_STATUSES = ("success", "failed", "skipped")
# The host's table each part of MetricValues reads: a part whose table the database lacks is
# None, and its families are left out.
TABLES = {
    "events": "omni_events",
    "processing": "omni_events",
    "dead_letters": "dead_letter_events",
    "automation_executions": "automation_logs",
    "automation_actions": "automation_logs",
    "instances": "instances",
}


@dataclass(frozen=True)
class ProcessingHistogram:
    """Events with a processing time: how many at or below each bound, their sum and count."""

    at_or_below: dict[int, int]
    sum_ms: int
    count: int


@dataclass(frozen=True)
class MetricValues:
    """Everything the data families report, from one snapshot (``None``: its table is
    missing)."""

    events: dict[tuple[str, str, str], int] | None
    processing: ProcessingHistogram | None
    dead_letters: dict[str, int] | None
    automation_executions: dict[str, int] | None
    automation_actions: int | None
    instances: dict[tuple[str, str], int] | None


def all_time_events(reader: Reader) -> tuple[dict, int, int]:
    """All-time events per (status, channel, direction), and the processing-time sum and
    count over them."""
    counts, proc_sum, proc_n = {}, 0, 0
    for row in reader.sums(EVENT_CHANNELS, by=("status", "channel", "direction")):
        counts[(row.status, row.channel, row.direction)] = row.n
        proc_sum += row.proc_sum
        proc_n += row.proc_n
    return counts, proc_sum, proc_n


def processing_at_or_below(reader: Reader) -> dict[int, int]:
    """Events whose processing_time_ms is at most each of PROCESSING_BOUNDS_MS."""
    buckets = reader.sums(LATENCY_COARSE, by=("coarse",))
    starts = {bound: latency_bucket(bound) for bound in PROCESSING_BOUNDS_MS}
    equal = {
        row.value: row.n
        for row in reader.sums(
            LATENCY,
            by=("value",),
            where={"coarse": sorted(set(starts.values())), "value": list(PROCESSING_BOUNDS_MS)},
        )
    }
    return {
        bound: sum(row.n for row in buckets if row.coarse < start) + equal.get(bound, 0)
        for bound, start in starts.items()
    }


def _automations(reader: Reader) -> tuple[dict[str, int], int]:
    executions = dict.fromkeys(AUTOMATION_STATUSES, 0)
    actions = 0
    for row in reader.sums(AUTOMATIONS, by=("status",)):
        executions[row.status] = row.n
        actions += row.actions
    return executions, actions


def metric_values(reader: Reader, lacking: Collection[str] = ()) -> MetricValues:
    """Every data family's numbers, read through ``reader`` (on its connection), but those
    of the tables in ``lacking``."""
    events = processing = dead = executions = actions = instances = None
    if TABLES["events"] not in lacking:
        events, proc_sum, proc_n = all_time_events(reader)
        processing = ProcessingHistogram(processing_at_or_below(reader), proc_sum, proc_n)
    if TABLES["dead_letters"] not in lacking:
        dead = dead_letters_by_status(reader)
    if TABLES["automation_executions"] not in lacking:
        executions, actions = _automations(reader)
    if TABLES["instances"] not in lacking:
        instances = instances_by_state(reader.connection)
    return MetricValues(events, processing, dead, executions, actions, instances)
