"""GET /api/v2/dashboard: compose the whole dashboard from one snapshot at one ``now``.

The summary always holds the core numbers (instances, event totals, dead letters, engine
state, system); each enabled built-in provider adds its part, and a disabled provider's
part is absent from both the response and its schema:

- ``rates``: events.lastHour, events.perHour, events.perMinute
- ``timeline``: events.timeline (and the ``timezone`` argument)
- ``breakdowns``: events.byChannel, events.byDirection
- ``automations``: automations.totalExecutions, automations.successRate
"""

from .facts import HostFacts
from .provider import ProviderContext
from .queries.alongside import Alongside
from .queries.snapshot import snapshot
from .queries.summary import dead_letter_totals, event_totals, instance_totals

PARTS = ("rates", "timeline", "breakdowns", "automations")


def compute_summary(dashboard, facts: HostFacts, timezone: str | None) -> dict:
    """The summary as the individual endpoints would report it with default arguments."""
    now = dashboard.clock()
    enabled = dashboard.enabled
    with snapshot(dashboard.engine, dashboard.config.statement_timeout_ms) as conn:
        dead_letters = Alongside(conn, dead_letter_totals)
        reader = dashboard.reader(conn, now, snapshot=True)
        totals = event_totals(reader, now)
        events = {
            "total": totals.total,
            "last24h": totals.last_24h,
            "failureRate": totals.failed / totals.total * 100 if totals.total else 0,
        }
        automations = {"running": facts.automations_running}

        def part(name, args=None):
            ctx = ProviderContext(conn, now, args or {}, dashboard.config, reader)
            return enabled[name].compute(ctx)

        if "rates" in enabled:
            rates = part("rates")
            events["lastHour"] = rates["eventsLastHour"]
            events["perHour"] = rates["eventsPerHour"]
            events["perMinute"] = rates["eventsPerMinute"]
        if "timeline" in enabled:
            args = {"allTime": False, **({"timezone": timezone} if timezone else {})}
            events["timeline"] = part("timeline", args)["timeline"]
        if "breakdowns" in enabled:
            breakdowns = part("breakdowns", {"allTime": False})
            events["byChannel"] = breakdowns["byChannel"]
            events["byDirection"] = breakdowns["byDirection"]
        if "automations" in enabled:
            stats = part("automations")
            automations["totalExecutions"] = stats["totalExecutions"]
            automations["successRate"] = stats["successRate"]
        instances = instance_totals(conn)
        pending, dead_total = dead_letters.result()
    return {
        "instances": instances,
        "events": events,
        "deadLetters": {"pending": pending, "total": dead_total},
        "automations": automations,
        "system": {
            "status": facts.status,
            "uptime": facts.uptime,
            "dbLatency": facts.db_latency,
            "natsConnected": facts.nats_connected,
        },
    }
