"""Aggregates of automation_logs for the automations provider."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .constructs import json_array_length, sum_where
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


def automation_totals(connection, now: datetime) -> AutomationTotals:
    """One statement over automation_logs; recent failures are those at or after now - 24 h."""
    executed = L.c.status.in_(EXECUTED)
    timed = executed & L.c.execution_time_ms.is_not(None)
    row = connection.execute(
        select(
            sum_where(executed),
            sum_where(L.c.status == "success"),
            sum_where(L.c.status == "skipped"),
            func.coalesce(func.sum(json_array_length(L.c.actions_executed)), 0),
            sum_where(timed, L.c.execution_time_ms),
            sum_where(timed),
            sum_where((L.c.status == "failed") & (L.c.created_at >= now - timedelta(hours=24))),
        )
    ).one()
    return AutomationTotals(*(int(value) for value in row))
