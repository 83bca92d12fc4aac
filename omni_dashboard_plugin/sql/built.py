"""Statements built once per process: SQLAlchemy caches a statement's compiled form by a key
it derives from the statement object each time it runs, and building the object costs more
than running a cached one (0.1 to 0.6 ms of CPU for a small select: performance.md)."""

import threading
from collections import OrderedDict

# Built statements by key (the shapes are few: kinds x plans, and a few fixed reads).
_STATEMENTS: dict = {}


def built(key: tuple, build):
    """The statement built for ``key`` in this process, built by ``build()`` the first time."""
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS.setdefault(key, build())
    return statement


class Recent:
    """Like :func:`built` for statements whose shapes are many (combinations of other
    shapes): those of the ``size`` keys used last are kept, the least recently used go."""

    def __init__(self, size: int) -> None:
        self._statements: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __call__(self, key: tuple, build):
        with self._lock:
            statement = self._statements.get(key)
            if statement is not None:
                self._statements.move_to_end(key)
                return statement
        statement = build()
        with self._lock:
            self._statements[key] = statement
            while len(self._statements) > self._size:
                self._statements.popitem(last=False)
        return statement

    def __len__(self) -> int:
        return len(self._statements)
