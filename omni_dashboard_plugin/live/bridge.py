"""The NATS bridge: one asyncio thread per process feeding the hub.

Started lazily in the process that serves streams (so after a server forks its workers).
When every configured subject is captured by a JetStream stream, the bridge consumes
through ordered JetStream consumers and ids are stream sequences (a client can resume
on any process); otherwise it uses core subscriptions and the hub's replay buffer.
"""

import asyncio
import contextlib
import logging
import threading

import nats
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .hub import Hub, ReplayTooOld
from .messages import MalformedMessage, parse

log = logging.getLogger(__name__)


class NatsBridge:
    """Subscribes ``subjects`` on ``url`` and publishes what arrives into ``hub``."""

    def __init__(self, url: str, subjects: list[str], hub: Hub, replay_limit: int):
        self.url = url
        self.subjects = subjects
        self.hub = hub
        self.replay_limit = replay_limit
        self.streams: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._client = None

    def start(self, wait: float = 5.0) -> None:
        """Run the bridge thread; wait up to ``wait`` seconds for the first connection."""
        self._thread = threading.Thread(target=self._run, name="omni-nats-bridge", daemon=True)
        self._thread.start()
        self._ready.wait(wait)

    def stop(self) -> None:
        """Close the NATS connection and end the thread."""
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._client = await nats.connect(
                    self.url,
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
                break
            except (TimeoutError, OSError, NatsError) as exc:
                self.hub.set_nats_connected(False)
                self._ready.set()
                log.warning("NATS unreachable at %s (%s); retrying", self.url, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
        if self._stop.is_set():
            return
        await self._subscribe()
        self.hub.set_nats_connected(True)
        self._ready.set()
        await self._stop.wait()
        with contextlib.suppress(OSError, NatsError):
            await self._client.close()

    async def _subscribe(self) -> None:
        js = self._client.jetstream()
        streams = {}
        for subject in self.subjects:
            try:
                streams[subject] = await js.find_stream_name_by_subject(subject)
            except (TimeoutError, NotFoundError, NatsError):
                streams = {}
                break
        if not streams:
            for subject in self.subjects:
                await self._client.subscribe(subject, cb=self._core_message)
            return
        last = {}
        for name in set(streams.values()):
            last[name] = (await js.stream_info(name)).state.last_seq
        self.streams = streams
        self.hub.replayer = self.replay
        self.hub.use_jetstream(last)
        for subject, name in streams.items():
            await js.subscribe(
                subject,
                stream=name,
                ordered_consumer=True,
                cb=self._stream_message,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=last[name] + 1,
                ),
            )

    def _publish(self, subject, data, stream=None, seq=None) -> None:
        try:
            event = parse(subject, data)
        except MalformedMessage as exc:
            self.hub.count("malformed")
            log.debug("skipped malformed message on %s: %s", subject, exc)
            return
        self.hub.publish(event, stream, seq)

    async def _core_message(self, msg) -> None:
        self._publish(msg.subject, msg.data)

    async def _stream_message(self, msg) -> None:
        meta = msg.metadata
        self._publish(msg.subject, msg.data, meta.stream, meta.sequence.stream)

    async def _disconnected(self) -> None:
        self.hub.set_nats_connected(False)

    async def _reconnected(self) -> None:
        self.hub.set_nats_connected(True)

    async def _error(self, exc) -> None:
        log.debug("NATS error: %s", exc)

    # --- JetStream replay, called from request threads ------------------------------

    def replay(self, cursor: dict[str, int]) -> list[tuple]:
        """Events after ``cursor`` in every stream, oldest first (by publish time).

        Raises :class:`ReplayTooOld` when they were removed or exceed the replay limit.
        """
        future = asyncio.run_coroutine_threadsafe(self._replay(cursor), self._loop)
        return future.result(timeout=30)

    async def _replay(self, cursor: dict[str, int]) -> list[tuple]:
        js = self._client.jetstream()
        found = []
        for name, after in cursor.items():
            state = (await js.stream_info(name)).state
            if after < state.first_seq - 1:
                raise ReplayTooOld(f"events after {name}={after} were removed from {name}")
            if state.last_seq - after > self.replay_limit:
                raise ReplayTooOld(f"more than {self.replay_limit} events were missed")
            wanted = [s for s, n in self.streams.items() if n == name]
            for seq in range(after + 1, state.last_seq + 1):
                try:
                    msg = await js.get_msg(name, seq)
                except NotFoundError:
                    continue
                if any(_matches(pattern, msg.subject) for pattern in wanted):
                    try:
                        event = parse(msg.subject, msg.data)
                    except MalformedMessage:
                        continue
                    found.append((msg.time or "", name, seq, event))
        found.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
        return [(name, seq, event) for _, name, seq, event in found]


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching with ``*`` and ``>`` wildcards."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)
