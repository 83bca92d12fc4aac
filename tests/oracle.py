"""Plain-Python reference computations over in-memory rows (dicts keyed by column).

Written independently of the code under test: no SQL, no shared helpers.
"""

import math
from collections import Counter
from datetime import timedelta
from fractions import Fraction


def round_half_away(value: Fraction) -> int:
    """Nearest integer, halves away from zero (Omni's latencies may be negative)."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def mean(values):
    values = [v for v in values if v is not None]
    return round_half_away(Fraction(sum(values), len(values))) if values else None


def p95(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = Fraction(95, 100) * (len(values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return round_half_away(values[low] + (rank - low) * (values[high] - values[low]))


def pct(part, whole):
    return part / whole * 100 if whole else 0


def event_metrics(events, dead_letters, payloads, now):
    status = Counter(e["status"] for e in events)
    dead = Counter(d["status"] for d in dead_letters)
    kept = [p for p in payloads if p["deleted_at"] is None]
    return {
        "totalEvents": len(events),
        "eventsLast24h": sum(e["received_at"] >= now - timedelta(hours=24) for e in events),
        "eventsLast7d": sum(e["received_at"] >= now - timedelta(days=7) for e in events),
        "completed": status["completed"],
        "failed": status["failed"],
        "pending": status["received"] + status["processing"],
        "avgProcessingTimeMs": mean(e["processing_time_ms"] for e in events),
        "avgAgentLatencyMs": mean(e["agent_latency_ms"] for e in events),
        "p95ProcessingTimeMs": p95(e["processing_time_ms"] for e in events),
        "failureRate": pct(status["failed"], len(events)),
        "errorsByStage": dict(
            Counter(e["error_stage"] for e in events if e["error_stage"] is not None)
        ),
        "deadLettersPending": dead["pending"],
        "deadLettersResolved": dead["resolved"],
        "payloadsStored": len(kept),
        "storageSizeBytes": sum(p["payload_size_compressed"] or 0 for p in kept),
    }


def in_window(events, since, until, instance_id):
    return [
        e
        for e in events
        if (since is None or e["received_at"] >= since)
        and (until is None or e["received_at"] <= until)
        and (instance_id is None or e["instance_id"] == instance_id)
    ]


def event_analytics(events):
    completed = sum(e["status"] == "completed" for e in events)

    def by(column):
        return {str(k): n for k, n in Counter(e[column] for e in events).items() if k is not None}

    return {
        "totalMessages": len(events),
        "successfulMessages": completed,
        "failedMessages": sum(e["status"] == "failed" for e in events),
        "successRate": pct(completed, len(events)),
        "avgProcessingTimeMs": mean(e["processing_time_ms"] for e in events),
        "avgAgentTimeMs": mean(e["agent_latency_ms"] for e in events),
        "messageTypes": by("content_type"),
        "errorStages": by("error_stage"),
        "instances": by("instance_id"),
    }


def dead_letter_stats(dead_letters):
    status = Counter(d["status"] for d in dead_letters)
    return {
        "total": len(dead_letters),
        "pending": status["pending"],
        "retrying": status["retrying"],
        "resolved": status["resolved"],
        "abandoned": status["abandoned"],
        "byEventType": dict(
            Counter("unknown" if d["event_type"] is None else d["event_type"] for d in dead_letters)
        ),
    }


def instance_summary(instances):
    return {
        "total": len(instances),
        "connected": sum(bool(i["is_active"]) for i in instances),
        "byChannel": dict(Counter(i["channel"] for i in instances)),
    }


def automation_log_order(logs, status=None, automation_id=None):
    """Log ids newest first (created_at desc, then id desc), after the filters."""
    chosen = [
        log
        for log in logs
        if (status is None or log["status"] == status)
        and (automation_id is None or log["automation_id"] == automation_id)
    ]
    chosen.sort(key=lambda log: (log["created_at"], log["id"]), reverse=True)
    return [str(log["id"]) for log in chosen]


def actions(logs) -> int:
    """Entries of every log's actions_executed (what is not a JSON array counts 0)."""
    return sum(
        len(log["actions_executed"]) for log in logs if isinstance(log["actions_executed"], list)
    )


def prometheus_samples(events, logs, dead_letters, instances):
    """The data families' samples: ``{(sample name, sorted labels): value}``, with ``le``
    as a float; a NULL label value is the empty one (Prometheus' absent label), summed with
    the rows whose value is empty."""
    samples = {}

    def put(name, value, **labels):
        key = (name, tuple(sorted((k, "" if v is None else v) for k, v in labels.items())))
        samples[key] = samples.get(key, 0.0) + float(value)

    for (status, channel, direction), n in Counter(
        (e["status"], e["channel"], e["direction"]) for e in events
    ).items():
        put("omni_events_total", n, status=status, channel=channel, direction=direction)
    timed = [e["processing_time_ms"] for e in events if e["processing_time_ms"] is not None]
    for power in range(16):
        bound = 16 * 2**power
        put("omni_event_processing_seconds_bucket", sum(v <= bound for v in timed), le=bound / 1000)
    put("omni_event_processing_seconds_bucket", len(timed), le=math.inf)
    put("omni_event_processing_seconds_count", len(timed))
    put("omni_event_processing_seconds_sum", Fraction(sum(timed), 1000))
    dead = Counter({status: 0 for status in ("pending", "retrying", "resolved", "abandoned")})
    dead.update(d["status"] for d in dead_letters)
    for status, n in dead.items():
        put("omni_dead_letters", n, status=status)
    runs = Counter({status: 0 for status in ("success", "failed", "skipped")})
    runs.update(log["status"] for log in logs)
    for status, n in runs.items():
        put("omni_automation_executions_total", n, status=status)
    put("omni_automation_actions_total", actions(logs))
    for (channel, active), n in Counter(
        (i["channel"], bool(i["is_active"])) for i in instances
    ).items():
        put("omni_instances", n, channel=channel, state="connected" if active else "disconnected")
    return samples
