"""Aggregates of automation_logs for the automations provider."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from .constructs import json_array_length
from .tables import automation_logs as L

EXECUTED = ("success", "failed")


@dataclass(frozen=True)
class AutomationTotals:
    """Counts over every automation log; ``executions`` excludes 'skipped' logs."""

    executions: int
    successes: int
    skipped: int
    actions: int
    execution_time_sum: int
    execution_time_count: int
    recent_failures: int


def _sum(condition, value=1):
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def automation_totals(connection, now: datetime) -> AutomationTotals:
    """One statement over automation_logs; recent failures are those at or after now - 24 h."""
    executed = L.c.status.in_(EXECUTED)
    timed = executed & L.c.execution_time_ms.is_not(None)
    row = connection.execute(
        select(
            _sum(executed),
            _sum(L.c.status == "success"),
            _sum(L.c.status == "skipped"),
            func.coalesce(func.sum(json_array_length(L.c.actions_executed)), 0),
            _sum(timed, L.c.execution_time_ms),
            _sum(timed),
            _sum((L.c.status == "failed") & (L.c.created_at >= now - timedelta(hours=24))),
        )
    ).one()
    return AutomationTotals(*(int(value) for value in row))
