"""Omni's NATS messages, turned into the feed's events.

A message body is ``{"id", "type", "payload", "timestamp" (epoch ms), "metadata"}`` on a
subject ``{eventType}.{channel}.{instanceId}`` (docs/live-feed.md).
``instance.connected``/``instance.disconnected`` become ``instance.status``; every other
event becomes ``event.received``.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

DIRECTIONS = {
    "message.received": "inbound",
    "message.sent": "outbound",
    "message.failed": "outbound",
    "message.delivered": "outbound",
    "message.read": "outbound",
}
INSTANCE_STATES = {"instance.connected": True, "instance.disconnected": False}


class MalformedMessage(ValueError):
    """A message that is not Omni's JSON shape; the bridge counts and skips it."""


@dataclass(frozen=True)
class FeedEvent:
    """One event of the feed: its SSE name, its data, and what the filters look at."""

    name: str
    data: dict
    event_type: str
    instance_id: str | None
    channel: str | None


def _subject_parts(subject: str) -> tuple[str | None, str | None]:
    tokens = subject.split(".")
    channel = tokens[2] if len(tokens) > 2 else None
    instance_id = tokens[3] if len(tokens) > 3 else None
    return channel, instance_id


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def parse(subject: str, body: bytes | str | dict) -> FeedEvent:
    """The feed event of one message; raises :class:`MalformedMessage`."""
    if isinstance(body, dict):
        message = body
    else:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage("not JSON") from exc
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    event_type, message_id = _text(message.get("type")), _text(message.get("id"))
    stamp = message.get("timestamp")
    if event_type is None or message_id is None:
        raise MalformedMessage("missing id or type")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        raise MalformedMessage("missing timestamp")
    metadata, payload = (_object(message.get(key)) for key in ("metadata", "payload"))
    subject_channel, subject_instance = _subject_parts(subject)
    channel = (
        _text(metadata.get("channelType")) or _text(payload.get("channelType")) or subject_channel
    )
    instance_id = (
        _text(metadata.get("instanceId")) or _text(payload.get("instanceId")) or subject_instance
    )
    if event_type in INSTANCE_STATES:
        data = {
            "instanceId": instance_id,
            "channel": channel,
            "isConnected": INSTANCE_STATES[event_type],
        }
        return FeedEvent("instance.status", data, event_type, instance_id, channel)
    try:
        received = datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedMessage("timestamp out of range") from exc
    data = {
        "id": message_id,
        "eventType": event_type,
        "instanceId": instance_id,
        "channel": channel,
        "receivedAt": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if event_type in DIRECTIONS:
        data["direction"] = DIRECTIONS[event_type]
    return FeedEvent("event.received", data, event_type, instance_id, channel)
