"""What providers and accelerators read through: the :class:`Reader` protocol.

The rollups implement it twice (``rollups.reader``: raw rows, or rollups plus raw rows);
a provider depends only on this protocol, never on those classes.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection


class Reader(Protocol):
    """Sums of a rollup kind's measures over a window, on one connection and snapshot."""

    connection: Connection

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
        ``since <= time <= until`` matching ``where``."""

    def dead_letters(self) -> dict[str, int] | None:
        """Dead letters per status as triggers keep them, or ``None``: count them raw."""

    def on(self, connection: Connection) -> "Reader":
        """This reader on another connection that reads the same snapshot."""
