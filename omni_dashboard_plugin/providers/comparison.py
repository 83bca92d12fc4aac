"""The ``compare`` argument of GET /events/analytics: the same numbers for an earlier window."""

from ..buckets import fill
from ..comparison import Earlier, earlier
from ..provider import InvalidArgument, Provider, ProviderContext
from ..queries.analytics import status_totals
from ..queries.events import slot_counts
from ..schemas import compare_argument, comparison_fields
from ..window import EventWindow
from .breakdowns import breakdown
from .timeline import layout


def iso(moment) -> str:
    """A naive-UTC instant as ISO 8601 with milliseconds and ``Z`` (as JavaScript writes it)."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def compared_timeline(ctx: ProviderContext, window: EventWindow, before: Earlier) -> list[dict]:
    """The timeline of ``before``'s window on the buckets of ``window``'s timeline."""
    buckets = layout(ctx, window, slot_counts(ctx.reader, window))
    slots = slot_counts(ctx.reader, before.window)
    return fill(buckets.starts, slots, buckets.zone, shift=before.slots)


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


PROVIDER = Provider(
    "comparison",
    "events.analytics",
    comparison_fields(),
    compute,
    __doc__,
    arguments={"compare": compare_argument("an earlier window")},
    tables=("omni_events",),
)
