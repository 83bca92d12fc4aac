"""Aggregates of automation_logs for the automations provider."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..reading import Reader
from ..rollups.kinds import AUTOMATIONS

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


def automation_totals(reader: Reader, now: datetime) -> AutomationTotals:
    """Totals per status; recent failures are those at or after now - 24 h."""
    by_status = {row.status: row for row in reader.sums(AUTOMATIONS, by=("status",))}

    def total(measure, statuses):
        return sum(getattr(by_status[s], measure) for s in statuses if s in by_status)

    [recent] = reader.sums(AUTOMATIONS, now - timedelta(hours=24), where={"status": "failed"})
    return AutomationTotals(
        executions=total("n", EXECUTED),
        successes=total("n", ("success",)),
        skipped=total("n", ("skipped",)),
        actions=total("actions", by_status),
        execution_time_sum=total("time_sum", EXECUTED),
        execution_time_count=total("time_n", EXECUTED),
        recent_failures=recent.n,
    )
