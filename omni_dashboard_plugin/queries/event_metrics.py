"""Omni's GET /event-ops/metrics payload, computed through a reader (so from rollups).

The host computes this payload itself with raw scans; when rollups are on, the plugin
offers this equivalent to the host through ``Dashboard.base``. It follows
docs/api.md of the reference host field by field, and the tests compare the two.
"""

from datetime import datetime, timedelta
from fractions import Fraction

from ..reading import Reader
from ..rollups.kinds import (
    EVENTS,
    LATENCY,
    LATENCY_COARSE,
    PAYLOAD_DELETIONS,
    PAYLOADS,
)
from ..rounding import round_half_away, rounded_mean
from .concurrent_read import ConcurrentRead
from .dead_letters import dead_letter_counts
from .events import count_since, measure_totals

PENDING = ("received", "processing")
# The payload's fields: a host whose schema has exactly these may let the plugin compute it.
FIELDS = (
    "totalEvents",
    "eventsLast24h",
    "eventsLast7d",
    "completed",
    "failed",
    "pending",
    "avgProcessingTimeMs",
    "avgAgentLatencyMs",
    "p95ProcessingTimeMs",
    "failureRate",
    "errorsByStage",
    "deadLettersPending",
    "deadLettersResolved",
    "payloadsStored",
    "storageSizeBytes",
)
# The tables it reads (docs/host-integration.md).
TABLES = ("omni_events", "dead_letter_events", "event_payloads")
DEAD_LETTERS = ("pending", "resolved")


def percentile_95(reader: Reader) -> int | None:
    """The 95th percentile of processing_time_ms (linear interpolation, as
    ``percentile_cont``), rounded half away from zero; ``None`` without values.

    Reads the per-bucket counts, then the exact values of the one or two buckets that
    hold the ranks around the 95th percentile.
    """
    buckets = sorted(reader.sums(LATENCY_COARSE, by=("coarse",)))
    total = sum(row.n for row in buckets)
    if not total:
        return None
    position = Fraction(95, 100) * (total - 1)
    low_rank = position.numerator // position.denominator
    ranks = [low_rank, min(low_rank + 1, total - 1)]
    chosen: list[int] = []
    below, seen = 0, 0
    for row in buckets:
        if any(below <= rank < below + row.n for rank in ranks):
            seen = seen if chosen else below  # the rank of the first chosen bucket's first value
            chosen.append(row.coarse)
        below += row.n
    values = sorted(reader.sums(LATENCY, by=("value",), where={"coarse": chosen}))
    found = []
    for row in values:
        found += [row.value] * sum(seen <= rank < seen + row.n for rank in ranks)
        seen += row.n
    low, high = found[0], found[-1]
    return round_half_away(low + (position - low_rank) * (high - low))


def event_metrics(reader: Reader, now: datetime) -> dict:
    """Every field of Omni's /event-ops/metrics at ``now``."""
    # Neither depends on the rest: both are read on a second connection meanwhile.
    alongside = ConcurrentRead(
        reader.connection,
        lambda connection: (
            dead_letter_counts(reader.on(connection), DEAD_LETTERS),
            percentile_95(reader.on(connection)),
        ),
    )
    rows = reader.sums(EVENTS, by=("status", "error_stage"))
    totals = measure_totals(rows, ("n", "proc_sum", "proc_n", "agent_sum", "agent_n"))
    by_status: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + row.n
        if row.error_stage is not None:
            by_stage[row.error_stage] = by_stage.get(row.error_stage, 0) + row.n
    last_24h = count_since(reader, now - timedelta(hours=24), per_slot=True)
    last_7d = count_since(reader, now - timedelta(days=7))
    [stored] = reader.sums(PAYLOADS)
    [deleted] = reader.sums(PAYLOAD_DELETIONS)
    dead, p95 = alongside.result()
    failed, total = by_status.get("failed", 0), totals["n"]
    return {
        "totalEvents": total,
        "eventsLast24h": last_24h,
        "eventsLast7d": last_7d,
        "completed": by_status.get("completed", 0),
        "failed": failed,
        "pending": sum(by_status.get(status, 0) for status in PENDING),
        "avgProcessingTimeMs": rounded_mean(totals["proc_sum"], totals["proc_n"]),
        "avgAgentLatencyMs": rounded_mean(totals["agent_sum"], totals["agent_n"]),
        "p95ProcessingTimeMs": p95,
        "failureRate": failed / total * 100 if total else 0,
        "errorsByStage": by_stage,
        "deadLettersPending": dead["pending"],
        "deadLettersResolved": dead["resolved"],
        "payloadsStored": stored.n - deleted.n,
        "storageSizeBytes": stored.bytes - deleted.bytes,
    }
