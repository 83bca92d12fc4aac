"""A WebSocket's closing wakes the thread that serves it.

simple-websocket (under flask-sock) reads each connection in a thread of its own and sets
the connection's ``event`` when a message arrives or the connection closes. Made with this
class (``SOCK_SERVER_OPTIONS["event_class"]``), that event also calls ``on_set``, which the
stream points at its mailbox's ``wake``: a client that closes gives its slot and thread back
at once, however idle the feed, instead of at the next event or heartbeat.
"""

import threading
from collections.abc import Callable


class WakingEvent(threading.Event):
    """``threading.Event`` that calls ``on_set`` (when given) each time it is set."""

    on_set: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        if self.on_set is not None:
            self.on_set()
