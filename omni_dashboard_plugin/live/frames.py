"""The Server-Sent Events text of one event."""

import json


def sse_frame(name: str, event_id: str, data: dict) -> str:
    """``id``, ``event`` and one ``data`` line of compact JSON, then a blank line."""
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {name}\ndata: {body}\n\n"
