"""A client's bounded mailbox: one writer (the hub), one reader (the client's thread).

Lighter than queue.Queue for fan-out: the reader takes everything waiting in one call, and
the writer signals only when the reader is actually asleep.
"""

import threading
from collections import deque


class Mailbox:
    """Items in arrival order; :meth:`take` returns them in batches."""

    def __init__(self):
        self._items: deque = deque()
        self._ready = threading.Condition(threading.Lock())
        self._sleeping = False
        self._woken = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item) -> None:
        """Append an item (the hub bounds the length before calling)."""
        self._items.append(item)
        if self._sleeping:
            with self._ready:
                self._ready.notify()

    def wake(self) -> None:
        """End the reader's wait now, or its next one, even with nothing to take (its
        connection closed, say)."""
        with self._ready:
            self._woken = True
            self._ready.notify()

    def take(self, timeout: float, limit: int) -> list:
        """Up to ``limit`` items, waiting up to ``timeout`` seconds for the first (or a wake)."""
        if not self._items:
            with self._ready:
                self._sleeping = True
                try:
                    if not self._items and not self._woken:
                        self._ready.wait(timeout)
                finally:
                    self._sleeping = self._woken = False
        items: list = []
        popleft = self._items.popleft
        while self._items and len(items) < limit:
            items.append(popleft())
        return items
