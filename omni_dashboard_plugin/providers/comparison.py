"""The ``compare`` argument of GET /events/analytics: the same numbers for an earlier window."""

from datetime import timedelta

from marshmallow import fields

from ..comparison import earlier, recent
from ..provider import DashboardPart, InvalidArgument, Provider, ProviderContext, Section
from ..queries.analytics import status_totals
from ..queries.events import tally
from ..schemas import compare_argument, comparison_fields
from ..window import EventWindow
from .breakdowns import breakdown
from .timeline import compared_timeline


def iso(moment) -> str:
    """A naive-UTC instant as ISO 8601 with milliseconds and ``Z`` (as JavaScript writes it)."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def compute(ctx: ProviderContext) -> dict:
    """``comparison`` when ``compare`` is given: totals, breakdowns and a timeline whose
    buckets match the window's one to one."""
    compare = ctx.args.get("compare")
    if compare is None:
        return {}
    if ctx.args.get("allTime"):
        raise InvalidArgument("compare", "an all-time window has no earlier period; give since")
    window = EventWindow.from_args(ctx.args, ctx.now)
    try:
        before = earlier(window, compare, ctx.now)
    except OverflowError:
        raise InvalidArgument(
            "compare", "the comparison window would begin before the year 1; give a later since"
        ) from None
    totals = status_totals(ctx.reader, before.window)
    return {
        "comparison": {
            "since": iso(before.since),
            "until": iso(before.until),
            "totalMessages": totals.count,
            "successfulMessages": totals.completed,
            "failedMessages": totals.failed,
            "successRate": totals.success_rate,
            "avgProcessingTimeMs": totals.mean_processing_ms,
            **breakdown(ctx.reader, before.window),
            "timeline": compared_timeline(ctx, window, before),
        }
    }


def dashboard(ctx: ProviderContext) -> dict:
    """With ``compare``: events.previous, holding the earlier window's 24-hour counts (and
    what the other providers add to it)."""
    if not ctx.args.get("compare"):
        return {}
    _, day = recent(ctx.args, ctx.now, timedelta(hours=24))
    counts = tally(ctx.reader, day.window, per_slot=True)
    return {"previous": {"last24h": counts.count, "failed24h": counts.failed}}


PREVIOUS = Section(
    "previous",
    "DashboardPreviousSchema",
    metadata={
        "description": "With compare: the same numbers for the 24 h before the last "
        "24 h and the hour before the last hour (previous_period), or for both 7 days "
        "earlier (previous_week); the timeline's buckets match events.timeline's"
    },
)
PROVIDER = Provider(
    "comparison",
    "events.analytics",
    comparison_fields(),
    compute,
    __doc__,
    arguments={"compare": compare_argument("an earlier window")},
    tables=("omni_events",),
    dashboard=DashboardPart(
        {
            "events": {"previous": PREVIOUS},
            "previous": {
                "last24h": fields.Integer(required=True),
                "failed24h": fields.Integer(required=True),
            },
        },
        dashboard,
        arguments={"compare": compare_argument("the last 24 h and the last hour")},
    ),
)
