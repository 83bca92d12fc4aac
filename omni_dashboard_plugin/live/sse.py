"""Server-Sent Events framing and the body of one SSE response."""

import time

from .hub import Hub, Item, Start

HEARTBEAT = ": heartbeat\n\n"
BATCH = 256


def opening_items(hub: Hub, start: Start) -> list[Item]:
    """``connected``, then ``reset`` or the replayed events."""
    sub = start.subscription
    items = [Item("connected", start.begin_id, hub.status_data())]
    if start.reset:
        reset = {"reason": start.reset, "refetch": "/api/v2/dashboard"}
        items.append(Item("reset", sub.current_id(), reset))
    return items + start.replay


def next_items(start: Start, timeout: float) -> list[Item]:
    """The queued items (at most BATCH, up to a final one), or [] after ``timeout`` idle seconds."""
    items = start.subscription.queue.take(timeout, BATCH)
    for index, item in enumerate(items):
        if item.final:
            return items[: index + 1]
    return items


def body(hub: Hub, start: Start, heartbeat: float, retry_ms: int, lifetime_ms: int = 0):
    """The text of an SSE response; unsubscribes when the client goes or the feed ends it.

    With ``lifetime_ms`` the stream ends after that long (the client reconnects and
    resumes), which spreads long-lived clients over processes.
    """
    ends = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
    try:
        yield f"retry: {retry_ms}\n\n" + "".join(item.sse() for item in opening_items(hub, start))
        while True:
            wait = heartbeat
            if ends is not None:
                wait = min(wait, ends - time.monotonic())
                if wait <= 0:
                    return
            items = next_items(start, wait)
            if not items:
                if ends is not None and time.monotonic() >= ends:
                    return
                yield HEARTBEAT
                continue
            yield "".join(item.sse() for item in items)
            if items[-1].final:
                return
    finally:
        hub.unsubscribe(start.subscription)
