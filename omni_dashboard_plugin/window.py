"""The event window of /events/analytics, resolved as Omni resolves it."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

# The host's arguments of /events/analytics the window is resolved from (Omni's names).
HOST_ARGUMENTS = ("since", "until", "instanceId", "allTime")


@dataclass(frozen=True)
class EventWindow:
    """Events with ``since <= received_at <= until`` (either bound may be open) of one
    instance and one channel (``None``: any).

    ``since`` defaults to ``now - 24 h`` unless ``allTime``; ``until`` has no default.
    """

    since: datetime | None
    until: datetime | None
    instance_id: UUID | None = None
    channel: str | None = None

    @classmethod
    def from_args(cls, args, now: datetime) -> "EventWindow":
        """Resolve the since/until/instanceId/channel/allTime arguments at ``now``."""
        since = _naive_utc(args.get("since"))
        if since is None and not args.get("allTime"):
            since = now - timedelta(hours=24)
        until = _naive_utc(args.get("until"))
        return cls(since, until, args.get("instanceId"), args.get("channel"))

    @property
    def where(self) -> dict:
        """The filters as rollup dims: ``{"instance_id": ..., "channel": ...}`` when set."""
        found = {"instance_id": self.instance_id, "channel": self.channel}
        return {dim: value for dim, value in found.items() if value is not None}

    def between(self, since: datetime | None, until: datetime | None) -> "EventWindow":
        """The same filters over another range."""
        return replace(self, since=since, until=until)


def inverted(args) -> bool:
    """Whether ``args`` hold a ``since`` after their ``until`` (an empty window, which
    the providers refuse: docs/api.md)."""
    since, until = _naive_utc(args.get("since")), _naive_utc(args.get("until"))
    return since is not None and until is not None and since > until


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
