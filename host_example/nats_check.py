"""A real NATS reachability check for /health, through nats-py, cached and bounded in time.

/health is open to anyone, so it must never wait on NATS: the probe (a connect and a PING)
runs in a thread of its own, at most once per ``ttl`` seconds, and a request waits for it
at most ``wait`` seconds; otherwise it reports the last result (not reachable, before any).
"""

import asyncio
import threading
import time
from dataclasses import dataclass

from omni_dashboard_plugin.config import nats_servers


@dataclass(frozen=True)
class Probe:
    """One check's outcome: reachable, PING round trip in ms (None when not), when."""

    connected: bool
    latency: int | None
    at: float


async def _ping(url: str, timeout: float) -> None:
    import nats  # the [live] extra: only a host with OMNI_NATS_URL probes NATS

    async def quiet(_exc):
        return None

    client = await nats.connect(
        servers=nats_servers(url),  # one server, or a cluster's: any one of them answering
        connect_timeout=timeout,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        error_cb=quiet,
    )
    try:
        await client.flush(timeout=timeout)
    finally:
        await client.close()


def ping(url: str, timeout: float = 1.0) -> Probe:
    """Connect to ``url`` (a server, or a comma list of a cluster's) and PING it, within
    ``timeout`` seconds."""
    began = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(_ping(url, timeout), timeout * 2))
    except Exception:
        return Probe(False, None, time.monotonic())
    done = time.monotonic()
    return Probe(True, round((done - began) * 1000), done)


class NatsProbe:
    """The cached check of one NATS URL."""

    def __init__(self, url: str, ttl: float = 5.0, wait: float = 0.05, timeout: float = 1.0):
        self.url = url
        self.ttl = ttl
        self.wait = wait
        self.timeout = timeout
        self._last: Probe | None = None
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        with self._lock:  # the first probe starts with the app, which does not wait for it
            self._start_probe()

    def check(self) -> Probe:
        """The latest outcome, refreshed in the background when older than ``ttl``."""
        with self._lock:
            last = self._last
            if last is not None and time.monotonic() - last.at < self.ttl:
                return last
            running = self._running or self._start_probe()
        running.wait(self.wait)
        return self._last or Probe(False, None, time.monotonic())

    def _start_probe(self) -> threading.Event:
        """Start a probe in its own thread (the caller holds the lock); set when it is done."""
        self._running = threading.Event()
        threading.Thread(target=self._probe, args=(self._running,), daemon=True).start()
        return self._running

    def _probe(self, done: threading.Event) -> None:
        result = ping(self.url, self.timeout)
        with self._lock:
            self._last, self._running = result, None
        done.set()
