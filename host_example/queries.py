"""The host's own SQL: the pre-enhancement endpoints, exactly as Omni defines them."""

import base64
import binascii
import uuid
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import and_, case, func, or_, select, true

from .numbers import percentage, round_half_away, rounded_mean
from .tables import automation_logs, dead_letter_events, event_payloads, instances, omni_events

E = omni_events


def _count_where(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def p95(connection, column, where=None) -> int | None:
    """The 95th percentile (linear interpolation, as percentile_cont) rounded to an integer."""
    base = select(column).where(column.is_not(None))
    if where is not None:
        base = base.where(where)
    n = connection.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    if n == 0:
        return None
    position = Fraction(95, 100) * (n - 1)
    k = position.numerator // position.denominator
    values = connection.scalars(base.order_by(column).offset(k).limit(2)).all()
    low = values[0]
    high = values[1] if len(values) > 1 else low
    return round_half_away(low + (position - k) * (high - low))


def event_metrics(connection, now: datetime) -> dict:
    """GET /event-ops/metrics: all-time status counts, latencies, windows, dead letters."""
    row = connection.execute(
        select(
            func.count().label("total"),
            _count_where(E.c.status == "completed").label("completed"),
            _count_where(E.c.status == "failed").label("failed"),
            _count_where(E.c.status.in_(("received", "processing"))).label("pending"),
            _count_where(E.c.received_at >= now - timedelta(hours=24)).label("last24h"),
            _count_where(E.c.received_at >= now - timedelta(days=7)).label("last7d"),
            func.coalesce(func.sum(E.c.processing_time_ms), 0).label("proc_sum"),
            func.count(E.c.processing_time_ms).label("proc_n"),
            func.coalesce(func.sum(E.c.agent_latency_ms), 0).label("agent_sum"),
            func.count(E.c.agent_latency_ms).label("agent_n"),
        )
    ).one()
    stages = connection.execute(
        select(E.c.error_stage, func.count())
        .where(E.c.error_stage.is_not(None))
        .group_by(E.c.error_stage)
    ).all()
    dead = dead_letter_counts(connection)
    payloads = connection.execute(
        select(
            func.count(), func.coalesce(func.sum(event_payloads.c.payload_size_compressed), 0)
        ).where(event_payloads.c.deleted_at.is_(None))
    ).one()
    return {
        "totalEvents": row.total,
        "eventsLast24h": int(row.last24h),
        "eventsLast7d": int(row.last7d),
        "completed": int(row.completed),
        "failed": int(row.failed),
        "pending": int(row.pending),
        "avgProcessingTimeMs": rounded_mean(row.proc_sum, row.proc_n),
        "avgAgentLatencyMs": rounded_mean(row.agent_sum, row.agent_n),
        "p95ProcessingTimeMs": p95(connection, E.c.processing_time_ms),
        "failureRate": percentage(int(row.failed), row.total),
        "errorsByStage": {stage: count for stage, count in stages},
        "deadLettersPending": dead["pending"],
        "deadLettersResolved": dead["resolved"],
        "payloadsStored": payloads[0],
        "storageSizeBytes": int(payloads[1]),
    }


def analytics_window(args, now: datetime):
    """The (since, until, instance_id) of /events/analytics; since defaults to now - 24 h."""
    since = args.get("since")
    if since is None and not args.get("allTime"):
        since = now - timedelta(hours=24)
    return since, args.get("until"), args.get("instanceId")


def window_condition(since, until, instance_id):
    """The WHERE clause of an analytics window (since and until both inclusive)."""
    conditions = []
    if since is not None:
        conditions.append(E.c.received_at >= since)
    if until is not None:
        conditions.append(E.c.received_at <= until)
    if instance_id is not None:
        conditions.append(E.c.instance_id == instance_id)
    return and_(true(), *conditions)


def event_analytics(connection, since, until, instance_id) -> dict:
    """GET /events/analytics for one window."""
    where = window_condition(since, until, instance_id)
    row = connection.execute(
        select(
            func.count().label("total"),
            _count_where(E.c.status == "completed").label("completed"),
            _count_where(E.c.status == "failed").label("failed"),
            func.coalesce(func.sum(E.c.processing_time_ms), 0).label("proc_sum"),
            func.count(E.c.processing_time_ms).label("proc_n"),
            func.coalesce(func.sum(E.c.agent_latency_ms), 0).label("agent_sum"),
            func.count(E.c.agent_latency_ms).label("agent_n"),
        ).where(where)
    ).one()

    def grouped(column):
        rows = connection.execute(
            select(column, func.count()).where(where, column.is_not(None)).group_by(column)
        ).all()
        return {str(key): count for key, count in rows}

    completed = int(row.completed)
    return {
        "totalMessages": row.total,
        "successfulMessages": completed,
        "failedMessages": int(row.failed),
        "successRate": percentage(completed, row.total),
        "avgProcessingTimeMs": rounded_mean(row.proc_sum, row.proc_n),
        "avgAgentTimeMs": rounded_mean(row.agent_sum, row.agent_n),
        "messageTypes": grouped(E.c.content_type),
        "errorStages": grouped(E.c.error_stage),
        "instances": grouped(E.c.instance_id),
    }


def dead_letter_counts(connection) -> dict:
    """Counts of dead letters by status (every status key present)."""
    rows = connection.execute(
        select(dead_letter_events.c.status, func.count()).group_by(dead_letter_events.c.status)
    ).all()
    counts = dict.fromkeys(("pending", "retrying", "resolved", "abandoned"), 0)
    counts.update({status: n for status, n in rows if status in counts})
    return counts


def dead_letter_stats(connection) -> dict:
    """GET /dead-letters/stats; a null event_type counts under 'unknown'."""
    total = connection.execute(select(func.count()).select_from(dead_letter_events)).scalar_one()
    kind = func.coalesce(dead_letter_events.c.event_type, "unknown")
    by_type = connection.execute(select(kind, func.count()).group_by(kind)).all()
    return {"total": total, **dead_letter_counts(connection), "byEventType": dict(by_type)}


def instance_summary(connection) -> dict:
    """Instance totals for /health: total, connected (is_active) and count per channel."""
    rows = connection.execute(
        select(instances.c.channel, func.count(), _count_where(instances.c.is_active)).group_by(
            instances.c.channel
        )
    ).all()
    return {
        "total": sum(n for _, n, _ in rows),
        "connected": sum(int(c) for _, _, c in rows),
        "byChannel": {channel: n for channel, n, _ in rows},
    }


class BadCursor(ValueError):
    """The automation-logs cursor is not one this API issues."""


def encode_cursor(created_at: datetime, log_id: uuid.UUID) -> str:
    """An opaque keyset cursor for the row (created_at, id)."""
    raw = f"{created_at.isoformat()}|{log_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Inverse of :func:`encode_cursor`, for the cursors it makes and no other: a naive
    timestamp and a UUID written exactly as it writes them (a crafted one, with a UTC offset
    say, would reach the database as something else). Raises :class:`BadCursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, log_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        position = datetime.fromisoformat(stamp), uuid.UUID(log_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor(cursor) from exc
    if position[0].tzinfo is not None or encode_cursor(*position) != cursor:
        raise BadCursor(cursor)
    return position


def automation_logs_page(connection, limit, cursor=None, status=None, automation_id=None):
    """One page of automation logs, newest first, with keyset pagination on (created_at, id)."""
    L = automation_logs
    query = select(L).order_by(L.c.created_at.desc(), L.c.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(L.c.status == status)
    if automation_id is not None:
        query = query.where(L.c.automation_id == automation_id)
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(L.c.created_at < at, and_(L.c.created_at == at, L.c.id < last_id)))
    rows = connection.execute(query).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if has_more else None
    return rows, {"hasMore": has_more, "cursor": next_cursor}
