"""The zero-filled, time-zone-aligned timeline on GET /events/analytics."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..buckets import DAILY, HOURLY, TooManyBuckets, bucket_after, bucket_starts, fill
from ..comparison import Earlier, recent
from ..grid import aware_slot_time
from ..provider import DashboardPart, InvalidArgument, Provider, ProviderContext
from ..queries.events import slot_counts
from ..schemas import granularity_argument, timeline_fields, timezone_argument
from ..window import EventWindow


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def span(window: EventWindow, slots: dict, now: datetime) -> tuple[datetime, datetime]:
    """First and last instant the timeline must cover (aware UTC).

    From ``since`` (or, with no lower bound, the earliest event, at the latest the last
    instant) to ``until``, else ``now``: events stamped after ``now`` never stretch a
    window the client left open (the bucket holding ``now`` is the last one).
    """
    last = _aware(window.until if window.until is not None else now)
    if window.since is not None:
        first = _aware(window.since)
    elif slots:
        first = min(aware_slot_time(min(slots)), last)
    else:
        first = last
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
    """The buckets of a window's timeline: their starts (aware UTC), size and zone, and
    where the last one ends (``None`` past the year 9999)."""

    starts: tuple[datetime, ...]
    granularity: str
    zone_name: str
    stop: datetime | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)


def _unbounded_end(args) -> str:
    """The argument that makes a window too long: the client's ``since``, else its
    ``allTime`` (the earliest event), else its ``until`` (after the default ``since``)."""
    if args.get("since") is not None:
        return "since"
    return "allTime" if args.get("allTime") else "until"


def layout(ctx: ProviderContext, window: EventWindow, slots: dict) -> Layout:
    """The buckets that cover ``window`` (holding ``slots``) for the request's
    granularity and timezone arguments."""
    zone_name = ctx.args.get("timezone") or ctx.config.timezone
    zone = ZoneInfo(zone_name)
    first, last = span(window, slots, ctx.now)
    bound = _unbounded_end(ctx.args)
    try:
        starts, granularity = _starts(
            first, last, zone, ctx.args.get("granularity"), ctx.config.timeline_max_buckets, bound
        )
    except OverflowError:
        raise InvalidArgument(bound, "is too far from today for a timeline") from None
    try:
        stop = bucket_after(starts[-1], zone, granularity)
    except OverflowError:
        stop = None
    return Layout(starts, granularity, zone_name, stop)


def compute(ctx: ProviderContext) -> dict:
    """timeline, timelineGranularity and timelineTimezone for the request's window."""
    window = EventWindow.from_args(ctx.args, ctx.now)
    slots = slot_counts(ctx.reader, window)
    buckets = layout(ctx, window, slots)
    return {
        "timeline": fill(buckets.starts, slots, buckets.zone, stop=buckets.stop),
        "timelineGranularity": buckets.granularity,
        "timelineTimezone": buckets.zone_name,
    }


def compared_timeline(ctx: ProviderContext, window: EventWindow, before: Earlier) -> list[dict]:
    """The timeline of ``before``'s window on the buckets of ``window``'s timeline."""
    buckets = layout(ctx, window, slot_counts(ctx.reader, window))
    slots = slot_counts(ctx.reader, before.window)
    return fill(buckets.starts, slots, buckets.zone, shift=before.slots)


def dashboard(ctx: ProviderContext) -> dict:
    """events.timeline of the last 24 h, and with ``compare`` the earlier window's on the
    same buckets."""
    ctx = replace(ctx, args={**ctx.args, "allTime": False})
    values = {"events": {"timeline": compute(ctx)["timeline"]}}
    if ctx.args.get("compare"):
        values["previous"] = {
            "timeline": compared_timeline(ctx, *recent(ctx.args, ctx.now, timedelta(hours=24)))
        }
    return values


PROVIDER = Provider(
    "timeline",
    "events.analytics",
    timeline_fields(),
    compute,
    __doc__,
    arguments={"granularity": granularity_argument(), "timezone": timezone_argument()},
    tables=("omni_events",),
    dashboard=DashboardPart(
        {
            "events": {"timeline": timeline_fields()["timeline"]},
            "previous": {"timeline": timeline_fields()["timeline"]},
        },
        dashboard,
        arguments={"timezone": timezone_argument()},
    ),
)
