"""Event rates on GET /event-ops/metrics: eventsLastHour, eventsPerHour, eventsPerMinute."""

from ..provider import Provider, ProviderContext
from ..queries.events import recent_counts
from ..schemas import rate_fields
from ..window import EventWindow


def compute(ctx: ProviderContext) -> dict:
    """Counts since ``now - 1 h`` and ``now - 24 h`` (inclusive), and their rates (of one
    instance and channel when the arguments say so: the dashboard's filters)."""
    counts = recent_counts(ctx.reader, ctx.now, EventWindow.from_args(ctx.args, ctx.now))
    return {
        "eventsLastHour": counts.last_hour,
        "eventsPerHour": counts.last_24h / 24,
        "eventsPerMinute": counts.last_hour / 60,
    }


PROVIDER = Provider(
    "rates", "event-ops.metrics", rate_fields(), compute, __doc__, tables=("omni_events",)
)
