"""The plugin's own per-process metrics: the live feed's and the rollup refresh's.

Each server process keeps its own, as ``prometheus_client`` metric objects. With several
processes (gunicorn workers), set ``PROMETHEUS_MULTIPROC_DIR`` before they start: the
values then live in files there and every scrape, whichever process answers it, sums the
counters and histograms of all processes, the client gauge of the live ones, and reports
NATS as connected only when every live process with a feed is (docs/prometheus.md).
"""

import os

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from ..live.hub import FeedMeter

REFRESH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def multiprocess_dir() -> str | None:
    """The directory of ``prometheus_client``'s multiprocess mode, when it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _counter(name: str, documentation: str) -> Counter:
    """A counter of this process, registered nowhere (:meth:`ProcessMetrics.collect`)."""
    return Counter(name, documentation, registry=None)


class ProcessMetrics(FeedMeter):
    """The live feed's hub and the rollups report here; :meth:`collect` yields them.

    ``nats`` says whether the feed has a NATS bridge; without one (the in-process bus)
    ``omni_dashboard_nats_connected`` is left out rather than reported as down.
    """

    def __init__(self, nats: bool):
        stream = "omni_dashboard_stream_"
        self.stream_clients = Gauge(
            f"{stream}clients",
            "Open live-feed streams (SSE and WebSocket)",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.stream_deliveries = _counter(
            f"{stream}deliveries", "Items queued for live-feed clients"
        )
        self.stream_overflows = _counter(
            f"{stream}overflows", "Live-feed clients let go because they fell behind"
        )
        self.stream_resets = _counter(
            f"{stream}resets", "Live-feed clients told to refetch (reset events)"
        )
        self.stream_replays = _counter(
            f"{stream}replays", "Live-feed clients resumed with the events they missed replayed"
        )
        self.stream_replay_failures = _counter(
            f"{stream}replay_failures",
            "Resuming live-feed clients whose missed events JetStream could not give (reset)",
        )
        self.stream_malformed = _counter(
            f"{stream}malformed", "NATS messages the live feed skipped as not Omni events"
        )
        self.stream_duplicates = _counter(
            f"{stream}duplicates", "JetStream messages dropped as already published (redelivered)"
        )
        self.nats = Gauge(
            "omni_dashboard_nats_connected",
            "1 while the live feed's NATS connection is up (every process's, with several)",
            registry=None,
            multiprocess_mode="livemin",
        )
        self.refresh_seconds = Histogram(
            "omni_dashboard_rollups_refresh_seconds",
            "Duration of the rollup refreshes this server ran",
            registry=None,
            buckets=REFRESH_BUCKETS,
        )
        self._metrics = (
            self.stream_clients,
            self.stream_deliveries,
            self.stream_overflows,
            self.stream_resets,
            self.stream_replays,
            self.stream_replay_failures,
            self.stream_malformed,
            self.stream_duplicates,
            *((self.nats,) if nats else ()),
            self.refresh_seconds,
        )
        self.names = frozenset(family.name for family in self.describe())

    def delivered(self) -> None:
        self.stream_deliveries.inc()

    def overflowed(self) -> None:
        self.stream_overflows.inc()

    def reset_sent(self) -> None:
        self.stream_resets.inc()

    def replayed(self) -> None:
        self.stream_replays.inc()

    def replay_failed(self) -> None:
        self.stream_replay_failures.inc()

    def malformed(self) -> None:
        self.stream_malformed.inc()

    def duplicate(self) -> None:
        self.stream_duplicates.inc()

    def clients(self, count: int) -> None:
        self.stream_clients.set(count)

    def nats_connected(self, connected: bool) -> None:
        self.nats.set(1 if connected else 0)

    def refreshed(self, seconds: float) -> None:
        """A rollup refresh took ``seconds``."""
        self.refresh_seconds.observe(seconds)

    def describe(self):
        """The families, without samples."""
        for metric in self._metrics:
            yield from metric.describe()

    def collect(self):
        """The families: this process's, or every process's in multiprocess mode."""
        if multiprocess_dir() is None:
            for metric in self._metrics:
                yield from metric.collect()
            return
        for family in MultiProcessCollector(None).collect():
            if family.name in self.names:
                yield family
