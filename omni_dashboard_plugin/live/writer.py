"""One writer thread for every SSE stream of the process whose socket it may take over.

With one thread per stream, each event wakes every stream's thread, and in CPython the
wake-ups and the GIL cost more than the writes (about 40 µs per delivery). Here the hub
wakes this thread once per event and it writes each client's frames with non-blocking
sends; a client whose socket is full keeps its events in its mailbox until it drains, and
is closed with ``overflow`` once it falls OMNI_DASHBOARD_STREAM_QUEUE events behind.

The request thread writes the response head and the opening events itself, hands the
socket over, and waits until the stream ends.
"""

import contextlib
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from .hub import Hub, Start
from .sse import BATCH, HEARTBEAT

HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache\r\n"
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
    "\r\n"
)


def raw_socket(environ) -> socket.socket | None:
    """The client socket the WSGI server exposes (werkzeug or gunicorn), if any."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    return sock if isinstance(sock, socket.socket) else None


@dataclass(eq=False)
class Stream:
    """A stream the writer serves: its socket, subscription, unsent bytes and deadlines."""

    sock: socket.socket
    start: Start
    ends: float | None
    pending: bytes = b""
    last_write: float = field(default_factory=time.monotonic)
    closing: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class SocketWriter:
    """The process's writer thread; created on the first stream it serves."""

    def __init__(self, hub: Hub, heartbeat: float):
        self.hub = hub
        self.heartbeat = heartbeat
        self._streams: set[Stream] = set()
        self._incoming: list[Stream] = []
        self._lock = threading.Lock()
        self._running = True
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="omni-sse-writer", daemon=True)
        self._thread.start()
        hub.add_listener(self.wake)

    def wake(self) -> None:
        """Ask the thread to look at the mailboxes (called by the hub after each event)."""
        with contextlib.suppress(OSError):  # a wake-up is already pending, or closed
            os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """End every stream and the thread."""
        self._running = False
        self.wake()
        self._thread.join(5)

    def serve(self, sock: socket.socket, start: Start, opening: str, lifetime_ms: int) -> None:
        """Write the head and ``opening`` on ``sock``, then stream until the end (blocking)."""
        try:
            sock.sendall((HEAD + opening).encode())
        except OSError:
            return  # the client left before the stream began
        sock.setblocking(False)
        ends = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
        stream = Stream(sock, start, ends)
        with self._lock:
            self._incoming.append(stream)
        self.wake()
        stream.done.wait()

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while self._running:
            for key, mask in self._selector.select(timeout=self._timeout()):
                if key.fd == self._wake_r:
                    self._drain_wake()
                elif mask & selectors.EVENT_READ:
                    self._peer_activity(key.data)
                else:
                    self._flush(key.data)
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for stream in incoming:
                self._streams.add(stream)
                self._selector.register(stream.sock, selectors.EVENT_READ, stream)
            now = time.monotonic()
            for stream in list(self._streams):
                self._service(stream, now)
        for stream in list(self._streams):
            self._close(stream)
        for stream in self._incoming:
            stream.done.set()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _timeout(self) -> float:
        deadlines = [s.last_write + self.heartbeat for s in self._streams]
        deadlines += [s.ends for s in self._streams if s.ends is not None]
        if not deadlines:
            return self.heartbeat
        return max(0.0, min(deadlines) - time.monotonic())

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _service(self, stream: Stream, now: float) -> None:
        if stream.pending:
            return  # waiting for the socket to take what it has
        if stream.closing or (stream.ends is not None and now >= stream.ends):
            self._close(stream)
            return
        items = stream.start.subscription.queue.take(0, BATCH)
        if items:
            final = next((i for i, item in enumerate(items) if item.final), None)
            if final is not None:
                items, stream.closing = items[: final + 1], True
            self._send(stream, "".join(item.sse() for item in items).encode())
        elif now - stream.last_write >= self.heartbeat:
            self._send(stream, HEARTBEAT.encode())

    def _send(self, stream: Stream, data: bytes) -> None:
        try:
            sent = stream.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(stream)
            return
        stream.last_write = time.monotonic()
        stream.pending = data[sent:]
        if stream.pending:
            self._selector.modify(stream.sock, selectors.EVENT_WRITE, stream)

    def _flush(self, stream: Stream) -> None:
        data, stream.pending = stream.pending, b""
        self._selector.modify(stream.sock, selectors.EVENT_READ, stream)
        self._send(stream, data)
        if not stream.pending and stream.closing:
            self._close(stream)

    def _peer_activity(self, stream: Stream) -> None:
        try:
            data = stream.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._close(stream)

    def _close(self, stream: Stream) -> None:
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        self._selector.unregister(stream.sock)
        self.hub.unsubscribe(stream.start.subscription)
        with contextlib.suppress(OSError):
            stream.sock.setblocking(True)
            stream.sock.shutdown(socket.SHUT_RDWR)
        stream.done.set()
