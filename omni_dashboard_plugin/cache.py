"""A small per-process cache of recent responses, computed once per key and interval."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from time import monotonic


class TtlCache:
    """Results kept for ``seconds``; concurrent misses of one key compute it once.

    ``seconds <= 0`` disables caching. At most ``max_entries`` keys are kept (oldest out).
    Errors are never cached.
    """

    def __init__(self, seconds: float, max_entries: int = 256):
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._flights: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def _fresh(self, key):
        entry = self._entries.get(key)
        if entry is not None and entry[0] > monotonic():
            return entry
        return None

    def get(self, key: Hashable, compute: Callable[[], object]):
        """The cached value of ``key``, or ``compute()`` stored for later calls."""
        if self.seconds <= 0:
            return compute()
        with self._lock:
            entry = self._fresh(key)
            if entry is not None:
                return entry[1]
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                entry = self._fresh(key)
                if entry is not None:
                    return entry[1]
            try:
                value = compute()
                with self._lock:
                    self._entries[key] = (monotonic() + self.seconds, value)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
            finally:
                with self._lock:
                    self._flights.pop(key, None)
            return value
