"""Omni's instances: totals for the dashboard, counts per state for Prometheus."""

from sqlalchemy import func, select

from ..sql.built import built
from ..sql.constructs import sum_where
from ..sql.tables import instances


def instance_totals(connection) -> dict:
    """total, connected (is_active) and count per channel of the instances."""
    statement = built(
        ("instance totals",),
        lambda: select(
            instances.c.channel, func.count(), sum_where(instances.c.is_active)
        ).group_by(instances.c.channel),
    )
    rows = connection.execute(statement).all()
    return {
        "total": sum(int(n) for _, n, _ in rows),
        "connected": sum(int(c) for _, _, c in rows),
        "byChannel": {channel: int(n) for channel, n, _ in rows},
    }


def instances_by_state(connection) -> dict[tuple[str, str], int]:
    """Instances per (channel, state), state ``connected`` (is_active) or ``disconnected``."""
    statement = built(
        ("instances by state",),
        lambda: select(instances.c.channel, instances.c.is_active, func.count()).group_by(
            instances.c.channel, instances.c.is_active
        ),
    )
    rows = connection.execute(statement)
    counts: dict = {}
    for channel, active, n in rows:
        key = (channel, "connected" if active else "disconnected")
        counts[key] = counts.get(key, 0) + int(n)
    return counts
