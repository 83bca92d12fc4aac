"""Server-Sent Events: the opening of a stream, and the WSGI body of one SSE response."""

import socket
import threading
import time

from .hub import Hub, Item, Opening, reset_notice
from .sockets import body_framing, bound_stalls, hang_up, raw_socket

HEARTBEAT = ": heartbeat\n"  # a comment line alone: no block, so no parser dispatches it
BATCH = 256


def opening_items(hub: Hub, start: Opening) -> list[Item]:
    """``connected``, then ``reset`` or the replayed events."""
    sub = start.subscription
    items = [Item("connected", start.begin_id, hub.status_data())]
    if start.reset:
        items.append(Item("reset", sub.current_id(), reset_notice(start.reset)))
    return items + start.replay


def opening_text(hub: Hub, start: Opening, retry_ms: int) -> str:
    """The first bytes of a stream; ``retry:`` rides in the ``connected`` event's block."""
    return f"retry: {retry_ms}\n" + "".join(item.sse() for item in opening_items(hub, start))


def next_items(start: Opening, timeout: float) -> list[Item]:
    """The queued items (at most BATCH, up to a final one), or [] after ``timeout`` idle seconds."""
    items = start.subscription.queue.take(timeout, BATCH)
    for index, item in enumerate(items):
        if item.final:
            return items[: index + 1]
    return items


class SseBody:
    """The body of one SSE response; the WSGI server iterates it and closes it.

    The server writes the head and the opening. Then, where the server exposes the socket
    and its framing is known, the process's writer thread continues the stream (``writer``
    is a callable returning it); otherwise this request thread writes through the server.
    Closing the body (the server does, on every path) unsubscribes.
    """

    def __init__(self, hub: Hub, start: Opening, settings, environ, writer=None):
        self.hub = hub
        self.start = start
        self.settings = settings
        self.environ = environ
        self.writer = writer
        self._writing = False
        self._bounded: socket.socket | None = None
        self._lock = threading.Lock()

    def __iter__(self):
        settings, sock = self.settings, raw_socket(self.environ)
        framing = body_framing(self.environ)
        if sock is not None:  # no write of the server's may block longer either
            bound_stalls(sock, settings.send_timeout)
            self._bounded = sock
        yield opening_text(self.hub, self.start, settings.retry_ms).encode()
        if self.writer is not None and framing is not None:
            # A client that was hung up on makes the server's last write fail, which
            # gunicorn and werkzeug take as a client that left.
            self.writer().serve(sock, self.start, framing, settings.lifetime_ms)
            return
        if sock is not None:
            self.start.subscription.on_overflow = lambda: self._interrupt(sock)
        yield from self._through_server()

    def _through_server(self):
        settings, start = self.settings, self.start
        lifetime = settings.lifetime_ms
        ends = time.monotonic() + lifetime / 1000 if lifetime else None
        while True:
            wait = settings.heartbeat_seconds
            if ends is not None:
                wait = min(wait, ends - time.monotonic())
                if wait <= 0:
                    return
            items = next_items(start, wait)
            if not items and ends is not None and time.monotonic() >= ends:
                return
            text = "".join(item.sse() for item in items) if items else HEARTBEAT
            if text:  # not when the server ends the stream (END)
                with self._lock:
                    self._writing = True
                yield text.encode()
                with self._lock:
                    self._writing = False
            if items and items[-1].final:
                return

    def _interrupt(self, sock) -> None:
        """The client overflowed: if the server is stuck writing to it, hang up now."""
        with self._lock:
            if self._writing:
                hang_up(sock)

    def close(self) -> None:
        """Forget the subscription (the server calls this when the response ends)."""
        self.hub.unsubscribe(self.start.subscription)
        if self._bounded is not None:  # the connection may serve further requests
            bound_stalls(self._bounded, 0)
