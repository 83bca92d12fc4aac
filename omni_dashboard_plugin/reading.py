"""What providers and accelerators read through: :class:`Reader`.

The rollups implement it twice (``rollups.reader``: raw rows, or rollups plus raw rows);
a provider depends only on this class, never on those.
"""

import weakref
from abc import ABC, abstractmethod
from collections import namedtuple
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, TypeGuard

from sqlalchemy.engine import Connection


def is_many(value: object) -> TypeGuard[list | tuple | set | frozenset]:
    """Whether a ``where`` value is a collection (matched with IN)."""
    return isinstance(value, list | tuple | set | frozenset)


# Reader.watermark of a reader whose rollups did not read the watermark.
NOT_READ = object()


@cache
def _row_type(by: tuple[str, ...], by_slot: bool, measures: tuple[str, ...]) -> Any:
    """The named row of a question: its keys, ``slot`` when by slot, the kind's measures."""
    return namedtuple("Sums", [*by, *("slot",) * by_slot, *measures])


class Reader(ABC):
    """Sums of a rollup kind's measures over a window, on one connection and snapshot.

    A reader serves one response: it remembers each answer, so that parts of a response
    asking the same question (the 24-hour count, say) share one statement.
    """

    # Whether :meth:`dead_letters` reads counts kept by triggers (no statement counts them).
    keeps_dead_letters = False
    # The rollups' watermark as the reader's rollups read it in its snapshot (a
    # ``rollups.state.Watermark`` or ``None``), when they read it: else ``NOT_READ``.
    watermark: Any = NOT_READ

    def __init__(self, connection: Connection):
        # Held weakly: a response's reader is remembered per connection, in a mapping that
        # holds its connections weakly (Dashboard.reader); a strong reference from the
        # reader would keep the connection, the reader and its answers alive for ever.
        self._connection = weakref.ref(connection)
        self._answers: dict = {}

    @property
    def connection(self) -> Connection:
        """The connection the reader reads on (it must outlive the reader's use)."""
        connection = self._connection()
        if connection is None:
            raise RuntimeError("the reader's connection is gone: read within its response")
        return connection

    def sums(
        self,
        kind: Any,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        by: tuple[str, ...] = (),
        where: Mapping | None = None,
        by_slot: bool = False,
    ) -> list:
        """Named rows (``row.n``, ``row.channel``, ``row.slot``) of ``by`` (and ``slot`` when
        ``by_slot``) plus every measure of ``kind``, summed over the source rows with
        ``since <= time <= until`` whose dims match ``where`` (a list matches any of its
        values, ``None`` matches NULL)."""
        items = tuple(sorted((d, tuple(v) if is_many(v) else v) for d, v in (where or {}).items()))
        key = (kind.name, since, until, tuple(by), items, by_slot)
        return self._ask(kind, key)

    def _ask(self, kind: Any, key: tuple) -> list:
        """The named answer of the question ``key`` (kind name, since, until, by, where,
        by_slot): remembered, or read now."""
        if key not in self._answers:
            self._remember(kind, key, self._sum(kind, key))
        return self._answers[key]

    def _remember(self, kind: Any, key: tuple, found: list[tuple]) -> None:
        """Keep ``found``, the rows of the question ``key``, as its named answer."""
        row = _row_type(key[3], key[5], tuple(kind.measures))
        self._answers[key] = [row._make(values) for values in found]

    def remembered(self, key: tuple, read) -> Any:
        """``read()``, once per response for ``key``."""
        if key not in self._answers:
            self._answers[key] = read()
        return self._answers[key]

    @abstractmethod
    def _sum(self, kind: Any, key: tuple) -> list[tuple]:
        """The rows of the question ``key`` (kind name, since, until, by, where, by_slot)."""

    @abstractmethod
    def dead_letters(self) -> dict[str, int] | None:
        """Dead letters per status as triggers keep them, or ``None``: count them raw."""

    @abstractmethod
    def on(self, connection: Connection) -> "Reader":
        """This reader on another connection that reads the same snapshot."""
