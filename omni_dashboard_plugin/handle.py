"""What the summary, the Prometheus collector and the blueprints need of the host's
``Dashboard`` (:class:`omni_dashboard_plugin.host.Dashboard` is the one implementation),
as typed protocols: they read these attributes and nothing else of it.
"""

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from typing import Protocol

from prometheus_client.metrics_core import Metric
from sqlalchemy.engine import Connection, Engine

from .config import DashboardConfig
from .facts import HostFacts
from .live.hub import Hub
from .live.writer import SocketWriter
from .provider import DashboardPart
from .reading import Reader


class Parts(Protocol):
    """The registry, as the summary sees it."""

    def dashboard_parts(self) -> list[DashboardPart]:
        """What the enabled providers add to GET /api/v2/dashboard."""
        ...


class RollupState(Protocol):
    """The rollups, as the collector sees them."""

    @property
    def active(self) -> bool:
        """Whether reads come from the rollup tables."""
        ...


class Live(Protocol):
    """The process's live feed, as the stream routes and the collector see it."""

    def hub(self) -> Hub:
        """This process's hub, started on first use."""
        ...

    def writer(self) -> SocketWriter:
        """This process's SSE writer thread, started on first use."""
        ...


class Families(Protocol):
    """The plugin's per-process Prometheus families."""

    def collect(self) -> Iterable[Metric]:
        """The families with their samples."""
        ...

    def describe(self) -> Iterable[Metric]:
        """The families without samples."""
        ...


class DashboardHandle(Protocol):
    """A configured dashboard (after ``init_app``)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def config(self) -> DashboardConfig: ...

    @property
    def facts(self) -> Callable[[], HostFacts] | None: ...

    @property
    def cache_scope(self) -> Callable[[], Hashable]: ...

    @property
    def lacking(self) -> Mapping[str, tuple[str, ...] | None]: ...

    @property
    def registry(self) -> Parts: ...

    @property
    def rollups(self) -> RollupState: ...

    @property
    def live(self) -> Live: ...

    @property
    def metrics(self) -> Families: ...

    def clock(self) -> datetime:
        """The naive-UTC ``now``."""
        ...

    def reader(self, connection: Connection, now: datetime, *, snapshot: bool = False) -> Reader:
        """The reader of one response on ``connection`` at ``now``."""
        ...
