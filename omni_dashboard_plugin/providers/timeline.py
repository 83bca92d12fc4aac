"""The zero-filled, time-zone-aligned timeline on GET /events/analytics."""

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..buckets import DAILY, HOURLY, TooManyBuckets, bucket_starts, fill
from ..grid import aware_slot_time
from ..provider import InvalidArgument, Provider, ProviderContext
from ..queries.events import slot_counts
from ..schemas import granularity_argument, timeline_fields, timezone_argument
from ..window import EventWindow


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def span(window: EventWindow, slots: dict, now: datetime) -> tuple[datetime, datetime]:
    """First and last instant the timeline must cover (aware UTC).

    From ``since`` (or the earliest event when there is no lower bound) to ``until`` (or
    ``now``, or the latest event when one lies after ``now``).
    """
    now = _aware(now)
    if window.since is not None:
        first = _aware(window.since)
    elif slots:
        first = aware_slot_time(min(slots))
    else:
        first = _aware(window.until) if window.until is not None else now
    if window.until is not None:
        last = _aware(window.until)
    else:
        last = max(now, aware_slot_time(max(slots))) if slots else now
    return first, max(first, last)


def _starts(first, last, zone, requested, cap, bound):
    if requested is not None:
        try:
            return bucket_starts(first, last, zone, requested, limit=cap), requested
        except TooManyBuckets:
            hint = (
                "use granularity=daily or a shorter window"
                if requested == HOURLY
                else ("use a shorter window")
            )
            raise InvalidArgument(
                "granularity", f"the window holds more than {cap} {requested} buckets; {hint}"
            ) from None
    try:
        return bucket_starts(first, last, zone, HOURLY, limit=cap), HOURLY
    except TooManyBuckets:
        pass
    try:
        return bucket_starts(first, last, zone, DAILY, limit=cap), DAILY
    except TooManyBuckets:
        raise InvalidArgument(
            bound,
            f"the window holds more than {cap} daily buckets, the timeline's cap "
            "(OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS); use a shorter window",
        ) from None


@dataclass(frozen=True)
class Layout:
    """The buckets of a window's timeline: their starts (aware UTC), size and zone."""

    starts: tuple[datetime, ...]
    granularity: str
    zone_name: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)


def layout(ctx: ProviderContext, window: EventWindow, slots: dict) -> Layout:
    """The buckets that cover ``window`` (holding ``slots``) for the request's
    granularity and timezone arguments."""
    zone_name = ctx.args.get("timezone") or ctx.config.timezone
    first, last = span(window, slots, ctx.now)
    bound = "since" if ctx.args.get("since") is not None else "allTime"
    if window.since is not None and ctx.args.get("since") is None:
        bound = "until"  # the default since (now - 24 h) and an until long before it
    try:
        starts, granularity = _starts(
            first,
            last,
            ZoneInfo(zone_name),
            ctx.args.get("granularity"),
            ctx.config.timeline_max_buckets,
            bound,
        )
    except OverflowError:
        raise InvalidArgument(bound, "is too far from today for a timeline") from None
    return Layout(starts, granularity, zone_name)


def compute(ctx: ProviderContext) -> dict:
    """timeline, timelineGranularity and timelineTimezone for the request's window."""
    window = EventWindow.from_args(ctx.args, ctx.now)
    slots = slot_counts(ctx.reader, window)
    buckets = layout(ctx, window, slots)
    return {
        "timeline": fill(buckets.starts, slots, buckets.zone),
        "timelineGranularity": buckets.granularity,
        "timelineTimezone": buckets.zone_name,
    }


PROVIDER = Provider(
    "timeline",
    "events.analytics",
    timeline_fields(),
    compute,
    __doc__,
    arguments={"granularity": granularity_argument(), "timezone": timezone_argument()},
    tables=("omni_events",),
)
