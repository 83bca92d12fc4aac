"""The event window of /events/analytics, resolved as Omni resolves it."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID


@dataclass(frozen=True)
class EventWindow:
    """Events with ``since <= received_at <= until`` (either bound may be open) of one instance.

    ``since`` defaults to ``now - 24 h`` unless ``allTime``; ``until`` has no default.
    """

    since: datetime | None
    until: datetime | None
    instance_id: UUID | None = None

    @classmethod
    def from_args(cls, args, now: datetime) -> "EventWindow":
        """Resolve the host's since/until/instanceId/allTime arguments at ``now``."""
        since = _naive_utc(args.get("since"))
        if since is None and not args.get("allTime"):
            since = now - timedelta(hours=24)
        until = _naive_utc(args.get("until"))
        return cls(since=since, until=until, instance_id=args.get("instanceId"))


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
