"""Random rows of the tables the plugin reads, and plain-Python answers over them."""

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

NOW = datetime(2026, 3, 10, 12, 0, 0)
CHANNELS = ("whatsapp-baileys", "whatsapp-cloud", "discord", "slack", "telegram")
STATUSES = ("received", "processing", "completed", "failed")
CONTENT_TYPES = ("text", "audio", "image", None)
STAGES = ("agent", "channel_send")
ACTION = {"action": "reply", "status": "success", "durationMs": 12}


@dataclass(frozen=True)
class Dataset:
    """Rows as dicts of the documented columns, per table."""

    instances: list
    events: list
    dead_letters: list
    payloads: list
    automations: list
    logs: list


def _maybe(rng, value):
    return value if rng.random() < 0.8 else None


def dataset(seed: int = 29, events: int = 400, days: int = 10) -> Dataset:
    """``events`` events over the ``days`` before :data:`NOW` (some at its edges), and a
    few rows of every other table."""
    rng = random.Random(seed)
    instances = [
        {"id": uuid.UUID(int=rng.getrandbits(128)), "channel": channel, "is_active": i % 2 == 0}
        for i, channel in enumerate(CHANNELS + CHANNELS[:2])
    ]
    rows = []
    for n in range(events):
        instance = rng.choice([*instances, None])
        status = rng.choice(STATUSES)
        seconds = rng.randrange(days * 86400) if n % 50 else (n // 50) * 3600
        rows.append(
            {
                "received_at": NOW - timedelta(seconds=seconds),
                "channel": instance["channel"] if instance else rng.choice(CHANNELS),
                "instance_id": instance["id"] if instance else None,
                "direction": rng.choice(("inbound", "outbound")),
                "status": status,
                "content_type": rng.choice(CONTENT_TYPES),
                "error_stage": _maybe(rng, rng.choice(STAGES)) if status == "failed" else None,
                "processing_time_ms": _maybe(rng, rng.randrange(5000)),
                "agent_latency_ms": _maybe(rng, rng.randrange(9000)),
            }
        )
    automations = [{"id": uuid.UUID(int=rng.getrandbits(128))} for _ in range(2)]
    return Dataset(
        instances=instances,
        events=rows,
        dead_letters=[
            {"status": rng.choice(("pending", "retrying", "resolved", "abandoned"))}
            for _ in range(15)
        ],
        payloads=[
            {
                "payload_size_compressed": rng.randrange(10_000),
                "timestamp": NOW - timedelta(hours=rng.randrange(100)),
                "deleted_at": None if rng.random() < 0.7 else NOW - timedelta(hours=1),
            }
            for _ in range(20)
        ],
        automations=automations,
        logs=[
            {
                "automation_id": rng.choice(automations)["id"],
                "status": rng.choice(("success", "failed", "skipped")),
                "actions_executed": [ACTION] * rng.randrange(3),
                "execution_time_ms": _maybe(rng, rng.randrange(900)),
                "created_at": NOW - timedelta(hours=rng.randrange(72)),
            }
            for _ in range(30)
        ],
    )


def in_window(events, since, until=None, *, instance_id=None, channel=None) -> list:
    """The events with ``since <= received_at <= until`` (open ends: ``None``) matching the
    filters."""
    return [
        e
        for e in events
        if (since is None or e["received_at"] >= since)
        and (until is None or e["received_at"] <= until)
        and (instance_id is None or e["instance_id"] == instance_id)
        and (channel is None or e["channel"] == channel)
    ]


def _mean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return int((Decimal(sum(values)) / len(values)).quantize(Decimal(1), ROUND_HALF_UP))


def analytics(events) -> dict:
    """Omni's /events/analytics fields over ``events`` (docs/host-integration.md)."""
    total = len(events)
    completed = sum(e["status"] == "completed" for e in events)

    def counts(column):
        found = Counter(e[column] for e in events if e[column] is not None)
        return {str(key): n for key, n in found.items()}

    return {
        "totalMessages": total,
        "successfulMessages": completed,
        "failedMessages": sum(e["status"] == "failed" for e in events),
        "successRate": completed / total * 100 if total else 0,
        "avgProcessingTimeMs": _mean(e["processing_time_ms"] for e in events),
        "avgAgentTimeMs": _mean(e["agent_latency_ms"] for e in events),
        "messageTypes": counts("content_type"),
        "errorStages": counts("error_stage"),
        "instances": counts("instance_id"),
    }


def by_channel(events) -> dict:
    """Events per channel."""
    return dict(Counter(e["channel"] for e in events))
