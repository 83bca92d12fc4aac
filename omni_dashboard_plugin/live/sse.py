"""Server-Sent Events framing and the body of one SSE response."""

import json
import queue
import time

from .hub import Hub, Item, Start

HEARTBEAT = ": heartbeat\n\n"
BATCH = 256


def frame(item: Item) -> str:
    """One SSE event: ``id``, ``event`` and one ``data`` line of compact JSON."""
    data = json.dumps(item.data, separators=(",", ":"))
    return f"id: {item.id}\nevent: {item.name}\ndata: {data}\n\n"


def opening_items(hub: Hub, start: Start) -> list[Item]:
    """``connected``, then ``reset`` or the replayed events."""
    sub = start.subscription
    items = [Item("connected", start.begin_id, hub.status_data())]
    if start.reset:
        reset = {"reason": start.reset, "refetch": "/api/v2/dashboard"}
        items.append(Item("reset", sub.current_id(), reset))
    return items + start.replay


def next_items(start: Start, timeout: float) -> list[Item]:
    """The queued items (at least one, at most BATCH), or [] after ``timeout`` idle seconds."""
    sub = start.subscription
    try:
        items = [sub.queue.get(timeout=timeout)]
    except queue.Empty:
        return []
    while not items[-1].final and len(items) < BATCH:
        try:
            items.append(sub.queue.get_nowait())
        except queue.Empty:
            break
    return items


def body(hub: Hub, start: Start, heartbeat: float, retry_ms: int, lifetime_ms: int = 0):
    """The text of an SSE response; unsubscribes when the client goes or the feed ends it.

    With ``lifetime_ms`` the stream ends after that long (the client reconnects and
    resumes), which spreads long-lived clients over processes.
    """
    ends = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
    try:
        yield f"retry: {retry_ms}\n\n" + "".join(map(frame, opening_items(hub, start)))
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
            yield "".join(map(frame, items))
            if items[-1].final:
                return
    finally:
        hub.unsubscribe(start.subscription)
