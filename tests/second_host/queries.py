"""The team's own SQL: its metrics, and Omni's analytics as docs/host-integration.md says."""

from collections import Counter
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

from .tables import instances, omni_events

E = omni_events


def _naive_utc(moment):
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _mean(total, count):
    if not count:
        return None
    return int((Decimal(int(total)) / Decimal(int(count))).quantize(Decimal(1), ROUND_HALF_UP))


def metrics(conn, now) -> dict:
    """All-time totals, and which channel is busiest."""
    by_channel = Counter()
    failed = 0
    for channel, status, n in conn.execute(
        select(E.c.channel, E.c.status, func.count()).group_by(E.c.channel, E.c.status)
    ):
        by_channel[channel] += n
        failed += n if status == "failed" else 0
    total = sum(by_channel.values())
    busiest = min(by_channel.items(), key=lambda item: (-item[1], item[0]))[0] if total else "-"
    return {
        "totalEvents": total,
        "failed": failed,
        "failureRate": failed / total * 100 if total else 0,
        "myTeamNote": f"busiest channel: {busiest}",
    }


def analytics(conn, args, now) -> dict:
    """Omni's analytics of the window ``args`` names."""
    since = _naive_utc(args.get("since")) or now - timedelta(hours=24)
    until = _naive_utc(args.get("until"))
    conditions = [E.c.received_at >= since]
    if until is not None:
        conditions.append(E.c.received_at <= until)
    if args.get("instanceId") is not None:
        conditions.append(E.c.instance_id == args["instanceId"])
    rows = conn.execute(
        select(
            E.c.status,
            E.c.content_type,
            E.c.error_stage,
            E.c.instance_id,
            func.count(),
            func.sum(E.c.processing_time_ms),
            func.count(E.c.processing_time_ms),
            func.sum(E.c.agent_latency_ms),
            func.count(E.c.agent_latency_ms),
        )
        .where(*conditions)
        .group_by(E.c.status, E.c.content_type, E.c.error_stage, E.c.instance_id)
    ).all()
    total = sum(row[4] for row in rows)
    completed = sum(row[4] for row in rows if row.status == "completed")
    types, stages, per_instance = Counter(), Counter(), Counter()
    for row in rows:
        if row.content_type is not None:
            types[row.content_type] += row[4]
        if row.error_stage is not None:
            stages[row.error_stage] += row[4]
        if row.instance_id is not None:
            per_instance[str(row.instance_id)] += row[4]
    return {
        "totalMessages": total,
        "successfulMessages": completed,
        "failedMessages": sum(row[4] for row in rows if row.status == "failed"),
        "successRate": completed / total * 100 if total else 0,
        "avgProcessingTimeMs": _mean(sum(r[5] or 0 for r in rows), sum(r[6] for r in rows)),
        "avgAgentTimeMs": _mean(sum(r[7] or 0 for r in rows), sum(r[8] for r in rows)),
        "messageTypes": dict(types),
        "errorStages": dict(stages),
        "instances": dict(per_instance),
    }


def instance_list(conn) -> list:
    """Every instance, by id."""
    return conn.execute(select(instances).order_by(instances.c.id)).mappings().all()
