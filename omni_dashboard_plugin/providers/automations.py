"""Execution aggregates from automation_logs on GET /automation-metrics."""

from decimal import ROUND_HALF_UP, Decimal

from ..provider import Provider, ProviderContext
from ..queries.automations import automation_totals
from ..schemas import automation_fields


def _rounded_mean(total: int, count: int) -> int:
    if not count:
        return 0
    return int((Decimal(total) / Decimal(count)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def compute(ctx: ProviderContext) -> dict:
    """totalExecutions, skipped, totalActions, successRate, avgExecutionTimeMs, recentFailures."""
    totals = automation_totals(ctx.connection, ctx.now)
    executions = totals.executions
    return {
        "totalExecutions": executions,
        "skipped": totals.skipped,
        "totalActions": totals.actions,
        "successRate": totals.successes / executions * 100 if executions else 0,
        "avgExecutionTimeMs": _rounded_mean(totals.execution_time_sum, totals.execution_time_count),
        "recentFailures": totals.recent_failures,
    }


PROVIDER = Provider(
    name="automations",
    endpoint="automation-metrics",
    fields=automation_fields(),
    compute=compute,
    description="execution counts, success rate, timing and recent failures from automation_logs",
)
