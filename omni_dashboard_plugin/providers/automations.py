"""Execution aggregates from automation_logs on GET /automation-metrics."""

from marshmallow import fields

from ..provider import DashboardPart, Provider, ProviderContext
from ..queries.automations import automation_totals
from ..rounding import rounded_mean
from ..schemas import automation_fields


def compute(ctx: ProviderContext) -> dict:
    """totalExecutions, skipped, totalActions, successRate, avgExecutionTimeMs, recentFailures."""
    totals = automation_totals(ctx.reader, ctx.now)
    executions = totals.executions
    return {
        "totalExecutions": executions,
        "skipped": totals.skipped,
        "totalActions": totals.actions,
        "successRate": totals.successes / executions * 100 if executions else 0,
        "avgExecutionTimeMs": rounded_mean(totals.execution_time_sum, totals.execution_time_count)
        or 0,
        "recentFailures": totals.recent_failures,
    }


def dashboard(ctx: ProviderContext) -> dict:
    """automations.totalExecutions and successRate."""
    stats = compute(ctx)
    return {"automations": {name: stats[name] for name in ("totalExecutions", "successRate")}}


PROVIDER = Provider(
    "automations",
    "automation-metrics",
    automation_fields(),
    compute,
    __doc__,
    tables=("automation_logs",),
    dashboard=DashboardPart(
        {
            "automations": {
                "totalExecutions": fields.Integer(required=True),
                "successRate": fields.Float(required=True),
            }
        },
        dashboard,
    ),
)
