"""Small per-process caches: recent responses, computed once per key and interval
(:class:`TtlCache`), and the values of the keys used last (:class:`Recent`)."""

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


class Recent:
    """The values of the ``size`` keys used last; the least recently used go first. Safe to
    share between threads."""

    def __init__(self, size: int) -> None:
        self._values: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        """The value kept for ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: Hashable, value) -> None:
        """Keep ``value`` for ``key``, replacing any (other threads may hold the old one)."""
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)

    def get_or(self, key: Hashable, make: Callable[[], object]):
        """The value kept for ``key``, or ``make()`` kept for it."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def __len__(self) -> int:
        return len(self._values)
