"""GET /api/v2/dashboard: compose the whole dashboard from one snapshot at one ``now``.

The summary always holds the core numbers (instances, event totals, dead letters, engine
state, system); each enabled built-in provider adds its part, and a disabled provider's
part is absent from both the response and its schema:

- ``rates``: events.lastHour, events.perHour, events.perMinute
- ``timeline``: events.timeline (and the ``timezone`` argument)
- ``breakdowns``: events.byChannel, events.byDirection
- ``automations``: automations.totalExecutions, automations.successRate
- ``comparison``: events.previous (and the ``compare`` argument)

``instanceId`` and ``channel`` narrow every ``events`` number to the matching events.
"""

from datetime import timedelta

from .comparison import earlier
from .facts import HostFacts
from .provider import ProviderContext
from .providers.comparison import compared_timeline
from .queries.concurrent_read import ConcurrentRead
from .queries.dead_letters import dead_letter_totals
from .queries.events import tally
from .queries.instances import instance_totals
from .sql.snapshot import snapshot
from .window import EventWindow

PARTS = ("rates", "timeline", "breakdowns", "automations", "comparison")
# The host's tables the core numbers read (docs/host-integration.md); the parts read what
# their providers read.
TABLES = ("omni_events", "instances", "dead_letter_events")
FILTERS = ("instanceId", "channel")
DAY, HOUR = timedelta(hours=24), timedelta(hours=1)


def compute_summary(dashboard, facts: HostFacts, args) -> dict:
    """The summary as the individual endpoints would report it with default arguments
    (``args``: the dashboard's own, parsed)."""
    now = dashboard.clock()
    enabled = dashboard.registry.enabled
    filters = {name: args[name] for name in FILTERS if args.get(name) is not None}
    scope = EventWindow.from_args({**filters, "allTime": True}, now)
    with snapshot(dashboard.engine, dashboard.config.statement_timeout_ms) as conn:
        reader = dashboard.reader(conn, now, snapshot=True)
        # Counted raw, they depend on nothing else: read on a second connection meanwhile.
        dead_letters = ConcurrentRead(
            conn,
            lambda connection: dead_letter_totals(reader.on(connection)),
            inline=reader.keeps_dead_letters,
        )

        def context(extra=None):
            merged = {**filters, **(extra or {})}
            return ProviderContext(conn, now, merged, dashboard.config, reader)

        all_time = tally(reader, scope)
        day = tally(reader, scope.between(now - DAY, None), per_slot=True)
        events = {
            "total": all_time.count,
            "last24h": day.count,
            "failed24h": day.failed,
            "failureRate": all_time.failed / all_time.count * 100 if all_time.count else 0,
        }
        automations = {"running": facts.automations_running}
        timeline_args = {"allTime": False}
        if args.get("timezone"):
            timeline_args["timezone"] = args["timezone"]

        def part(name, extra=None):
            return enabled[name].compute(context(extra))

        if "rates" in enabled:
            rates = part("rates")
            events["lastHour"] = rates["eventsLastHour"]
            events["perHour"] = rates["eventsPerHour"]
            events["perMinute"] = rates["eventsPerMinute"]
        if "timeline" in enabled:
            events["timeline"] = part("timeline", timeline_args)["timeline"]
        if "breakdowns" in enabled:
            breakdowns = part("breakdowns", {"allTime": False})
            events["byChannel"] = breakdowns["byChannel"]
            events["byDirection"] = breakdowns["byDirection"]
        if "comparison" in enabled and args.get("compare"):
            events["previous"] = _previous(context(timeline_args), scope, args["compare"], enabled)
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


def _previous(ctx: ProviderContext, scope: EventWindow, compare: str, enabled) -> dict:
    """events.previous: the numbers of the last 24 h and hour for their comparison windows."""
    current_day = scope.between(ctx.now - DAY, None)
    day = earlier(current_day, compare, ctx.now)
    counts = tally(ctx.reader, day.window, per_slot=True)
    previous = {"last24h": counts.count, "failed24h": counts.failed}
    if "rates" in enabled:
        hour = earlier(scope.between(ctx.now - HOUR, None), compare, ctx.now)
        last_hour = tally(ctx.reader, hour.window).count
        previous |= {
            "lastHour": last_hour,
            "perHour": counts.count / 24,
            "perMinute": last_hour / 60,
        }
    if "timeline" in enabled:
        previous["timeline"] = compared_timeline(ctx, current_day, day)
    return previous
