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
    by_status = {
        status: (n, actions, time_sum, time_n)
        for status, n, actions, time_sum, time_n in reader.sums(AUTOMATIONS, by=("status",))
    }

    def total(position, statuses):
        return sum(by_status[s][position] for s in statuses if s in by_status)

    recent = reader.sums(AUTOMATIONS, now - timedelta(hours=24), where={"status": "failed"})
    return AutomationTotals(
        executions=total(0, EXECUTED),
        successes=total(0, ("success",)),
        skipped=total(0, ("skipped",)),
        actions=total(1, by_status),
        execution_time_sum=total(2, EXECUTED),
        execution_time_count=total(3, EXECUTED),
        recent_failures=recent[0][0],
    )
