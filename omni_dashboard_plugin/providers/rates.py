"""Event rates on GET /event-ops/metrics: eventsLastHour, eventsPerHour, eventsPerMinute."""

from datetime import timedelta

from marshmallow import fields

from ..comparison import recent
from ..provider import DashboardPart, Provider, ProviderContext
from ..queries.events import recent_counts, tally
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


def dashboard_fields() -> dict:
    """The rates on the dashboard, in events and events.previous."""
    return {
        "lastHour": fields.Integer(required=True),
        "perHour": fields.Float(required=True),
        "perMinute": fields.Float(required=True),
    }


def dashboard(ctx: ProviderContext) -> dict:
    """events.lastHour, perHour and perMinute, and with ``compare`` those of the earlier
    windows of the last hour and the last 24 h."""
    rates = compute(ctx)
    values = {
        "events": {
            "lastHour": rates["eventsLastHour"],
            "perHour": rates["eventsPerHour"],
            "perMinute": rates["eventsPerMinute"],
        }
    }
    if ctx.args.get("compare"):
        _, day = recent(ctx.args, ctx.now, timedelta(hours=24))
        _, hour = recent(ctx.args, ctx.now, timedelta(hours=1))
        last_hour = tally(ctx.reader, hour.window).count
        values["previous"] = {
            "lastHour": last_hour,
            "perHour": tally(ctx.reader, day.window, per_slot=True).count / 24,
            "perMinute": last_hour / 60,
        }
    return values


PROVIDER = Provider(
    "rates",
    "event-ops.metrics",
    rate_fields(),
    compute,
    __doc__,
    tables=("omni_events",),
    dashboard=DashboardPart(
        {"events": dashboard_fields(), "previous": dashboard_fields()}, dashboard
    ),
)
