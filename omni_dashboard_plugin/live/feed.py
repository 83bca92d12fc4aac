"""The process's live feed, a Flask extension: a hub, and a NATS bridge when
OMNI_NATS_URL is set.

Created lazily and per process id, so that a server which forks workers after loading
the app gets one bridge (and one NATS subscription) in each worker. The extension stops
them itself when the process exits.
"""

import asyncio
import atexit
import json
import os
import threading
import weakref
from typing import TYPE_CHECKING

from ..config import StreamSettings
from ..extensions import register
from .hub import FeedMeter, Hub
from .messages import MalformedMessage, parse
from .writer import SocketWriter

if TYPE_CHECKING:  # nats-py is the [live] extra's: imported on first use
    from .bridge import NatsBridge

EXTENSION_KEY = "omni_dashboard_live"


def _stop_at_exit(feed: weakref.ref) -> None:
    live = feed()
    if live is not None:
        live.stop()


class LiveFeed:
    """Publishes into, and subscribes from, this process's hub."""

    def __init__(self, meter: FeedMeter | None = None):
        self.settings = StreamSettings()
        self.meter = meter
        self.off = False
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._hub: Hub | None = None
        self._bridge: NatsBridge | None = None  # when OMNI_NATS_URL is set
        self._writer: SocketWriter | None = None

    def init_app(self, app, *, off: bool = False) -> None:
        """Read the stream settings from ``app.config`` and stop the feed (NATS bridge,
        writer thread) when the process exits. Nothing starts before first use; with
        ``off`` (``OMNI_DASHBOARD_PROVIDERS=none``) nothing ever does, and
        :meth:`publish` does nothing.
        ``RuntimeError`` when the app has a live feed already.
        """
        self.off = off
        self.settings = StreamSettings.from_mapping(app.config)
        register(app, EXTENSION_KEY, self)
        atexit.register(_stop_at_exit, weakref.ref(self))

    def hub(self) -> Hub:
        """This process's hub, started (with its bridge) on first use."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    s = self.settings
                    hub = Hub(
                        s.replay_size, s.queue_size, s.max_clients, self.meter, bool(s.nats_url)
                    )
                    bridge = None
                    if s.nats_url:
                        # nats-py (the [live] extra; config checked it is installed)
                        from .bridge import NatsBridge

                        bridge = NatsBridge(
                            s.nats_servers,
                            list(s.subjects),
                            hub,
                            s.replay_size,
                            s.jetstream,
                            s.replicas,
                        )
                        bridge.start()
                    self._hub, self._bridge, self._writer = hub, bridge, None
                    self._pid = os.getpid()
        current = self._hub
        if current is None:  # stop() ran meanwhile, on another thread
            raise RuntimeError("the live feed was stopped")
        return current

    def writer(self) -> SocketWriter:
        """This process's SSE writer thread, started on first use."""
        hub = self.hub()
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    s = self.settings
                    self._writer = SocketWriter(hub, s.heartbeat_seconds, s.send_timeout)
        return self._writer

    def publish(self, subject: str, message: dict) -> None:
        """Publish an Omni message: to NATS when configured, else to the in-process bus;
        nothing when the feed is off."""
        if self.off:
            return
        hub = self.hub()
        if self._bridge is None:
            try:
                hub.publish(parse(subject, message))
            except MalformedMessage:
                hub.meter.malformed()
            return
        client, loop = self._bridge.client, self._bridge.loop
        if client is None or loop is None:
            raise ConnectionError("NATS is not connected")
        data = json.dumps(message).encode()
        asyncio.run_coroutine_threadsafe(client.publish(subject, data), loop).result(5)

    def end_streams(self) -> None:
        """End this process's open streams cleanly and refuse new ones (503): call it when
        the server begins a graceful stop or reload, so that clients reconnect to the
        processes that stay, resuming from their last id, while this one drains."""
        if self._pid == os.getpid() and self._hub is not None:
            self._hub.end_streams()

    def stop(self) -> None:
        """End the streams, then stop this process's bridge and writer (tests and shutdown)."""
        self.end_streams()
        with self._lock:
            if self._pid == os.getpid():
                if self._bridge is not None:
                    self._bridge.stop()
                if self._writer is not None:
                    self._writer.close()
            self._pid = self._hub = self._bridge = self._writer = None
