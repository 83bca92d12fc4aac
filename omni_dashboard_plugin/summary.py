"""GET /api/v2/dashboard: compose the whole dashboard from one snapshot at one ``now``.

The summary always holds the core numbers (instances, event totals, dead letters, engine
state, system); each enabled provider with a :class:`~.provider.DashboardPart` adds its
fields, and a disabled provider's are absent from both the response and its schema (the
built-in ones: ``rates`` events.lastHour, perHour and perMinute; ``timeline``
events.timeline and the ``timezone`` argument; ``breakdowns`` events.byChannel and
byDirection; ``automations`` automations.totalExecutions and successRate; ``comparison``
events.previous and the ``compare`` argument).

``instanceId`` and ``channel`` narrow every ``events`` number to the matching events.
"""

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from .facts import HostFacts
from .handle import DashboardHandle
from .provider import DashboardPart, ProviderContext, Section
from .queries.concurrent_read import ConcurrentRead
from .queries.dead_letters import dead_letter_totals
from .queries.events import tally
from .queries.instances import instance_totals
from .sql.snapshot import snapshot
from .window import EventWindow

# The host's tables the core numbers read (docs/host-integration.md); the parts read what
# their providers read.
TABLES = ("omni_events", "instances", "dead_letter_events")
FILTERS = ("instanceId", "channel")
DAY = timedelta(hours=24)


def compute_summary(dashboard: DashboardHandle, facts: HostFacts, args: Mapping) -> dict:
    """The summary as the individual endpoints would report it with default arguments
    (``args``: the dashboard's own, parsed)."""
    now = dashboard.clock()
    parts = dashboard.registry.dashboard_parts()
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
        all_time = tally(reader, scope)
        day = tally(reader, scope.between(now - DAY, None), per_slot=True)
        sections: dict[str, dict[str, Any]] = {
            "events": {
                "total": all_time.count,
                "last24h": day.count,
                "failed24h": day.failed,
                "failureRate": all_time.failed / all_time.count * 100 if all_time.count else 0,
            },
            "automations": {"running": facts.automations_running},
        }
        given = {name: value for name, value in args.items() if value is not None}
        ctx = ProviderContext(conn, now, given, dashboard.config, reader)
        for part in parts:
            for section, values in part.compute(ctx).items():
                sections.setdefault(section, {}).update(values)
        _nest(sections, parts)
        instances = instance_totals(conn)
        pending, dead_total = dead_letters.result()
    return {
        "instances": instances,
        "events": sections["events"],
        "deadLetters": {"pending": pending, "total": dead_total},
        "automations": sections["automations"],
        "system": {
            "status": facts.status,
            "uptime": facts.uptime,
            "dbLatency": facts.db_latency,
            "natsConnected": facts.nats_connected,
        },
    }


def _nest(sections: dict, parts: Iterable[DashboardPart]) -> None:
    """Put each computed section in the field that holds it (a :class:`Section`)."""
    for part in parts:
        for section, declared in part.fields.items():
            for name, field in declared.items():
                if isinstance(field, Section) and field.name in sections:
                    sections.setdefault(section, {})[name] = sections[field.name]
