"""The first statement of a rollup read on PostgreSQL: :func:`open_read`.

Before a response reads rollups it must know that the state table is there (a failed
statement would abort the host's transaction), turn parallel workers off for its
transaction, and, for each source it reads, find the oldest row (retention may have cut
into the oldest rolled slot: :func:`.state.first_whole_slot`). Asked one at a time that
was five round trips before the first sum; :func:`open_read` asks them in one, and the
watermark is the second. Under a busy database every round trip waits for a core, so
fewer of them is the cheapest latency a read can shed.

Which sources a response reads is known only once its parts ask, so each endpoint
remembers the sources its earlier responses probed (:class:`Sources`): its first
response probes them one by one, as before, and the later ones in the opening.
"""

from dataclasses import dataclass, field
from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import func, literal, select

from ..sql.built import built
from ..sql.snapshot import PARALLEL_WORKERS as WORKERS
from .kinds import KINDS, state

# (source table, time column) -> the expression of its oldest time (one index probe).
_OLDEST = {(k.source.name, k.time.name): func.min(k.time) for k in KINDS}


@dataclass(frozen=True)
class Opening:
    """What the opening found: whether the state table is there, the transaction's
    parallel workers setting before it was turned off, and the oldest time of each
    probed source (``None``: the source is empty)."""

    installed: bool
    workers: str
    oldest: dict[tuple[str, str], datetime | None] = field(default_factory=dict)

    def restore_workers(self, connection) -> None:
        """Put the transaction's parallel workers back (the response reads raw rows after
        all: the rollups lag, or are gone, and raw scans of a large table use them)."""
        connection.execute(select(func.set_config(WORKERS, self.workers, True)))


class Sources:
    """The sources (``(table, time column)``) each endpoint's readers probed before."""

    def __init__(self) -> None:
        self._by_endpoint: dict[str | None, frozenset] = {}

    @staticmethod
    def _endpoint() -> str | None:
        return request.endpoint if has_request_context() else None

    def known(self) -> frozenset:
        """The sources the current endpoint's earlier responses probed."""
        return self._by_endpoint.get(self._endpoint(), frozenset())

    def learn(self, source: tuple[str, str]) -> None:
        """Remember that the current endpoint's responses probe ``source``."""
        endpoint = self._endpoint()
        # Replaced, never changed in place: other threads may be reading the old set.
        self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, frozenset()) | {source}


def _statement(sources: tuple):
    # The setting is read in a subquery that is not flattened (OFFSET 0), so it is
    # read before the outer row sets it.
    before = select(func.current_setting(WORKERS).label("workers")).offset(0).subquery()
    return select(
        func.to_regclass(state.name).is_not(None),
        before.c.workers,
        func.set_config(WORKERS, literal("0"), True),
        *(select(_OLDEST[source]).scalar_subquery() for source in sources),
    ).select_from(before)


def open_read(connection, sources: frozenset) -> Opening:
    """One statement (PostgreSQL): whether the rollups' state table exists, parallel
    workers off for the transaction (their setting before returned), and the oldest time
    of each of ``sources``."""
    ordered = tuple(sorted(sources))
    row = connection.execute(built(("opening", ordered), lambda: _statement(ordered))).one()
    installed, workers, _, *oldest = row
    return Opening(bool(installed), workers, dict(zip(ordered, oldest, strict=True)))
