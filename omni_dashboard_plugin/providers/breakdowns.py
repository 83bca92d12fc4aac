"""Channel and direction breakdowns on GET /events/analytics."""

from collections import Counter
from dataclasses import replace

from ..provider import DashboardPart, Provider, ProviderContext
from ..queries.events import breakdown_rows
from ..reading import Reader
from ..schemas import breakdown_fields
from ..window import EventWindow


def breakdown(reader: Reader, window: EventWindow) -> dict:
    """byChannel and byDirection of ``window``, from one grouped statement."""
    by_channel: Counter = Counter()
    by_direction = {"inbound": 0, "outbound": 0}
    for row in breakdown_rows(reader, window):
        if row.channel is not None:  # a NULL channel is no channel's
            by_channel[row.channel] += row.n
        if row.direction in by_direction:
            by_direction[row.direction] += row.n
    return {"byChannel": dict(by_channel), "byDirection": by_direction}


def compute(ctx: ProviderContext) -> dict:
    """byChannel and byDirection of the request's window."""
    return breakdown(ctx.reader, EventWindow.from_args(ctx.args, ctx.now))


def dashboard(ctx: ProviderContext) -> dict:
    """events.byChannel and byDirection of the last 24 h."""
    return {"events": compute(replace(ctx, args={**ctx.args, "allTime": False}))}


PROVIDER = Provider(
    "breakdowns",
    "events.analytics",
    breakdown_fields(),
    compute,
    __doc__,
    tables=("omni_events",),
    dashboard=DashboardPart({"events": breakdown_fields("of the last 24 h")}, dashboard),
)
