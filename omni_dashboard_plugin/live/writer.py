"""One writer thread for every SSE stream of the process whose socket it may continue on.

With one thread per stream, each event wakes every stream's thread, and in CPython the
wake-ups and the GIL cost more than the writes (about 40 µs per delivery). Here the hub
wakes this thread once per event and it writes each client's frames with non-blocking
sends, framed the way the WSGI server framed the response it began (``sockets.py``).

A client that keeps bytes waiting here for ``send_timeout`` seconds (partial sends do not
restart the clock), or whose mailbox overflows while its socket is full, is hung up on at
once; the kernel drops one whose receive window stays closed that long
(``sockets.bound_stalls``), however much the send buffer could still take. A stream that
ends on its own (its lifetime, an ``overflow`` notice that was written, or the server's
:data:`~.hub.END`) hands the socket back to the server, which ends the response (the last
chunk) and may keep the connection alive.
"""

import contextlib
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from .hub import Hub, Opening
from .sockets import frame, hang_up
from .sse import BATCH, HEARTBEAT


@dataclass(eq=False)
class Stream:
    """A stream the writer serves: its socket, framing, unsent bytes and deadlines."""

    sock: socket.socket
    start: Opening
    framing: str
    ends: float | None
    pending: bytes = b""
    last_write: float = field(default_factory=time.monotonic)
    stalled_since: float | None = None  # since when bytes have been waiting in ``pending``
    closing: bool = False
    watch_reads: bool = True
    clean: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class SocketWriter:
    """The process's writer thread; created on the first stream it serves."""

    def __init__(self, hub: Hub, heartbeat: float, send_timeout: float):
        self.hub = hub
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
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

    def serve(self, sock: socket.socket, start: Opening, framing: str, lifetime_ms: int) -> bool:
        """Stream on ``sock`` until the end (blocking); the server already wrote the head.

        True when the stream ended on its own and ``sock`` is as the server left it; False
        when the client was hung up on (it left, stalled, or the process is stopping).
        """
        timeout = sock.gettimeout()
        sock.setblocking(False)
        ends = time.monotonic() + lifetime_ms / 1000 if lifetime_ms else None
        stream = Stream(sock, start, framing, ends)
        with self._lock:
            if not self._running:
                return False
            self._incoming.append(stream)
        self.wake()
        stream.done.wait()
        if stream.clean:
            sock.settimeout(timeout)
        return stream.clean

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while self._running:
            for key, mask in self._selector.select(timeout=self._timeout()):
                if key.fd == self._wake_r:
                    self._drain_wake()
                    continue
                stream = key.data
                if mask & selectors.EVENT_READ:
                    self._peer_activity(stream)
                if mask & selectors.EVENT_WRITE and stream in self._streams:
                    self._flush(stream)
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for stream in incoming:
                self._streams.add(stream)
                self._selector.register(stream.sock, selectors.EVENT_READ, stream)
            now = time.monotonic()
            for stream in list(self._streams):
                self._service(stream, now)
        with self._lock:
            incoming, self._incoming = self._incoming, []
        for stream in list(self._streams):
            self._close(stream, clean=False)
        for stream in incoming:
            self.hub.unsubscribe(stream.start.subscription)
            stream.done.set()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _timeout(self) -> float:
        deadlines = []
        for stream in self._streams:
            if stream.stalled_since is not None:
                deadlines.append(stream.stalled_since + self.send_timeout)
            else:
                deadlines.append(stream.last_write + self.heartbeat)
            if stream.ends is not None:
                deadlines.append(stream.ends)
        if not deadlines:
            return self.heartbeat
        return max(0.0, min(deadlines) - time.monotonic())

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _service(self, stream: Stream, now: float) -> None:
        if stream.pending:
            # The socket is full: an overflowed client, or one that has kept bytes waiting
            # for the send timeout, is hung up on; otherwise wait for it to drain.
            stalled = now if stream.stalled_since is None else stream.stalled_since
            if stream.start.subscription.closed or now - stalled >= self.send_timeout:
                self._close(stream, clean=False)
            return
        if stream.closing or (stream.ends is not None and now >= stream.ends):
            self._close(stream, clean=True)
            return
        items = stream.start.subscription.queue.take(0, BATCH)
        if items:
            final = next((i for i, item in enumerate(items) if item.final), None)
            if final is not None:
                items, stream.closing = items[: final + 1], True
            text = "".join(item.sse() for item in items)
            if text:  # not when the server ends the stream (END)
                self._send(stream, frame(text.encode(), stream.framing))
        elif now - stream.last_write >= self.heartbeat:
            self._send(stream, frame(HEARTBEAT.encode(), stream.framing))
        if stream.closing and not stream.pending and stream in self._streams:
            self._close(stream, clean=True)

    def _send(self, stream: Stream, data: bytes) -> None:
        try:
            sent = stream.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(stream, clean=False)
            return
        now = time.monotonic()
        stream.last_write = now
        stream.pending = data[sent:]
        if not stream.pending:
            stream.stalled_since = None
        elif stream.stalled_since is None:  # a partial send is no catching up
            stream.stalled_since = now
        self._watch(stream)

    def _flush(self, stream: Stream) -> None:
        data, stream.pending = stream.pending, b""
        self._send(stream, data)
        if not stream.pending and stream.closing and stream in self._streams:
            self._close(stream, clean=True)

    def _watch(self, stream: Stream) -> None:
        events = (selectors.EVENT_READ if stream.watch_reads else 0) | (
            selectors.EVENT_WRITE if stream.pending else 0
        )
        registered = stream.sock in self._selector.get_map()
        if events and registered:
            self._selector.modify(stream.sock, events, stream)
        elif events:
            self._selector.register(stream.sock, events, stream)
        elif registered:
            self._selector.unregister(stream.sock)

    def _peer_activity(self, stream: Stream) -> None:
        try:
            data = stream.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._close(stream, clean=False)
        else:  # a pipelined request: the server reads it after the stream
            stream.watch_reads = False
            self._watch(stream)

    def _close(self, stream: Stream, clean: bool) -> None:
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        if stream.sock in self._selector.get_map():
            self._selector.unregister(stream.sock)
        self.hub.unsubscribe(stream.start.subscription)
        stream.clean = clean
        if not clean:
            hang_up(stream.sock)
        stream.done.set()
