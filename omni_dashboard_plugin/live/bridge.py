"""The NATS bridge: one asyncio thread per process feeding the hub.

Started lazily in the process that serves streams (so after a server forks its workers).
When every configured subject is captured by a JetStream stream (or the bridge may create
one: OMNI_DASHBOARD_STREAM_JETSTREAM=create), it consumes through one ordered consumer per
stream and ids are stream sequences, so a client can resume on any process; otherwise it
uses core subscriptions and the hub's replay buffer.

Given a cluster's servers, it connects to one of them and, when that one goes, to another
(those it was given, and those the cluster announces), then resumes from the last sequence
it delivered.
"""

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from .hub import Hub, ReplayTooOld
from .messages import MalformedMessage, parse

log = logging.getLogger(__name__)

FEED_STREAM = "OMNI_DASHBOARD_FEED"
FEED_MAX_AGE = 24 * 3600  # seconds a created stream keeps events
FEED_MAX_BYTES = 1 << 30
REPLAY_BATCH = 256
RETRY_ERRORS = (TimeoutError, OSError, NatsError)
# A server that stops answering without closing the connection (a host down, a partition)
# is given up after this many pings unanswered, one every PING_SECONDS.
PING_SECONDS = 5
PINGS_UNANSWERED = 2
# After a reconnect, and while replaying, a JetStream request is given RESUME_TIMEOUT and
# tried again RETRY_PAUSE later: a cluster that lost a node answers again once it elected
# new leaders (nats-server waits 4 to 9 s before it does).
RESUME_TIMEOUT = 1.0
RETRY_PAUSE = 0.1
# Until NATS first answers, connecting is tried again after 0.2 s, doubling up to 5 s.
CONNECT_PAUSE, CONNECT_PAUSE_CEILING = 0.2, 5.0
REPLAY_SECONDS = 25  # how long a replay keeps trying (a request thread waits for it)


def backoff(first: float, ceiling: float) -> Iterator[float]:
    """Pauses between attempts: ``first`` seconds, doubled after each, at most ``ceiling``."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, ceiling)


class NatsBridge:
    """Subscribes ``subjects`` on the NATS ``servers`` (a list, or a comma list of URLs:
    one server, or a cluster's) and publishes what arrives into ``hub``. ``replicas`` is
    the replica count of the stream it creates (``jetstream="create"``)."""

    def __init__(
        self,
        servers: str | list[str],
        subjects: list[str],
        hub: Hub,
        replay_limit: int,
        jetstream: str = "use",
        replicas: int = 1,
    ):
        if isinstance(servers, str):
            servers = [url.strip() for url in servers.split(",") if url.strip()]
        self.servers = list(servers)
        self.url = ",".join(self.servers)
        self.replicas = replicas
        self.subjects = subjects
        self.hub = hub
        self.replay_limit = replay_limit
        self.jetstream = jetstream
        self.streams: dict[str, str] = {}
        self.client: Any = None  # the nats-py client, once connecting
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop = asyncio.Event()  # set (in the bridge's loop) by stop()
        self._thread: threading.Thread | None = None
        self._consumers: list = []
        self._resuming: asyncio.Task | None = None

    def start(self, wait: float = 5.0) -> None:
        """Run the bridge thread; wait up to ``wait`` seconds for the first connection."""
        self._thread = threading.Thread(target=self._run, name="omni-nats-bridge", daemon=True)
        self._thread.start()
        self._ready.wait(wait)

    def stop(self) -> None:
        """Close the NATS connection, end the thread and close its event loop."""
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        pauses = backoff(CONNECT_PAUSE, CONNECT_PAUSE_CEILING)
        while not self._stop.is_set():
            try:
                await self._connect_and_subscribe()
                break
            except RETRY_ERRORS as exc:
                self.hub.set_nats_connected(False)
                self._ready.set()
                await self._retry_after(f"NATS at {self.url}", exc, next(pauses))
        if not self._stop.is_set():
            self.hub.set_nats_connected(True)
            self._ready.set()
            await self._stop.wait()
        if self.client is not None:
            with contextlib.suppress(*RETRY_ERRORS):
                await self.client.close()

    async def _retry_after(
        self, what: str, exc: BaseException, seconds: float, level: int = logging.WARNING
    ) -> None:
        """The one pause before an attempt is made again: log why, then wait ``seconds``
        (less when the bridge stops)."""
        log.log(level, "%s failed (%s); retrying in %.1f s", what, exc, seconds)
        await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _connect_and_subscribe(self) -> None:
        if self.client is None or self.client.is_closed:
            self.client = await nats.connect(
                servers=self.servers,
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                ping_interval=PING_SECONDS,
                max_outstanding_pings=PINGS_UNANSWERED,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                error_cb=self._error,
            )
        streams = await self._find_streams()
        if not streams:
            for subject in self.subjects:
                await self.client.subscribe(subject, cb=self._core_message)
            return
        js = self.client.jetstream()
        last = {name: (await js.stream_info(name)).state.last_seq for name in set(streams.values())}
        self.streams = streams
        self.hub.replayer = self.replay
        self.hub.use_jetstream(last)
        await self._consume(js, last)

    async def _find_streams(self) -> dict[str, str]:
        """The JetStream stream of each subject; empty for buffer mode."""
        if self.jetstream == "off":
            return {}
        js = self.client.jetstream()
        streams, missing = {}, []
        for subject in self.subjects:
            try:
                streams[subject] = await js.find_stream_name_by_subject(subject)
            except NotFoundError:
                missing.append(subject)
            except RETRY_ERRORS as exc:
                log.info("no JetStream at %s (%s): the feed runs in buffer mode", self.url, exc)
                return {}
        if missing and self.jetstream != "create":
            log.info("no JetStream stream captures %s: buffer mode", ", ".join(missing))
            return {}
        if missing:
            await js.add_stream(
                StreamConfig(
                    name=FEED_STREAM,
                    subjects=missing,
                    max_age=FEED_MAX_AGE,
                    max_bytes=FEED_MAX_BYTES,
                    storage=StorageType.FILE,
                    discard=DiscardPolicy.OLD,
                    num_replicas=self.replicas,
                )
            )
            log.info(
                "created JetStream stream %s for %s (%d replicas)",
                FEED_STREAM,
                ", ".join(missing),
                self.replicas,
            )
            streams.update(dict.fromkeys(missing, FEED_STREAM))
        elif self.jetstream == "create" and FEED_STREAM in streams.values():
            await self._keep_replicas(js)
        return streams

    async def _keep_replicas(self, js) -> None:
        """Bring the plugin's own stream to ``replicas`` (after a move to a cluster, say)."""
        config = (await js.stream_info(FEED_STREAM)).config
        if config.num_replicas != self.replicas:
            log.info(
                "JetStream stream %s: %s replicas, changed to %d",
                FEED_STREAM,
                config.num_replicas,
                self.replicas,
            )
            config.num_replicas = self.replicas
            await js.update_stream(config)

    def _subjects_by_stream(self) -> dict[str, list[str]]:
        grouped = defaultdict(list)
        for subject, name in self.streams.items():
            grouped[name].append(subject)
        return grouped

    async def _consume(self, js, last: dict[str, int]) -> None:
        """One ordered consumer per stream, from the sequence after ``last``."""
        for name, subjects in self._subjects_by_stream().items():
            self._consumers.append(
                await js.subscribe(
                    subjects[0],
                    stream=name,
                    ordered_consumer=True,
                    cb=self._stream_message,
                    config=ConsumerConfig(
                        filter_subjects=subjects,
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=last[name] + 1,
                    ),
                )
            )

    async def _resume_consumers(self) -> None:
        """After a reconnect: new consumers from the hub's cursor, at once.

        (An ordered consumer would notice a restarted server only after two missed
        heartbeats, about 10 s.) Events the streams no longer hold end in ``reset``. While
        the consumers cannot be created (a cluster whose meta leader died elects another
        first), the events are read one by one meanwhile (:meth:`_read_one_by_one`).
        """
        meanwhile = None
        try:
            while not self._stop.is_set():
                try:
                    old, self._consumers = self._consumers, []
                    for sub in old:
                        with contextlib.suppress(*RETRY_ERRORS):
                            await sub.unsubscribe()
                    js = self.client.jetstream(timeout=RESUME_TIMEOUT)
                    cursor = self.hub.cursor()
                    state = {name: (await js.stream_info(name)).state for name in cursor}
                    lost = [
                        name
                        for name, s in state.items()
                        if s.last_seq < cursor[name] or s.first_seq > cursor[name] + 1
                    ]
                    if lost:
                        cursor = {name: s.last_seq for name, s in state.items()}
                        reason = f"events of {', '.join(lost)} were lost"
                        self.hub.use_jetstream(cursor, reset=reason)
                    if meanwhile is None:
                        meanwhile = asyncio.get_running_loop().create_task(
                            self._read_one_by_one(js)
                        )
                    await self._consume(js, self.hub.cursor())
                    self.hub.set_nats_connected(True)
                    return
                except RETRY_ERRORS as exc:
                    await self._retry_after("resubscribing to JetStream", exc, RETRY_PAUSE)
        finally:
            if meanwhile is not None:
                meanwhile.cancel()

    async def _read_one_by_one(self, js) -> None:
        """Publish each stream's next message on the bridge's subjects, one request each
        (JetStream's Msg Get, which the stream's leader answers alone), until cancelled.

        The consumers created meanwhile start at most where this got to: what they
        deliver again, the hub drops (its sequence is not past the hub's cursor).
        """
        read: dict[str, int] = {}
        while True:
            found = False
            for name, subjects in self._subjects_by_stream().items():
                after = max(read.get(name, 0), self.hub.cursor().get(name, 0))
                candidates = []
                for subject in subjects:
                    with contextlib.suppress(NotFoundError, *RETRY_ERRORS):
                        candidates.append(await js.get_msg(name, after + 1, subject, next=True))
                if candidates:
                    msg = min(candidates, key=lambda m: m.seq)
                    read[name] = msg.seq
                    self._publish(msg.subject, msg.data, name, msg.seq)
                    found = True
            if not found:
                await asyncio.sleep(RETRY_PAUSE)

    def _publish(self, subject, data, stream=None, seq=None) -> None:
        try:
            event = parse(subject, data)
        except MalformedMessage as exc:
            self.hub.meter.malformed()
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
        if not self.streams:
            self.hub.set_nats_connected(True)
        elif self._resuming is None or self._resuming.done():
            self._resuming = asyncio.get_running_loop().create_task(self._resume_consumers())

    async def _error(self, exc) -> None:
        log.debug("NATS error: %s", exc)

    # --- JetStream replay, called from request threads ------------------------------

    def replay(self, cursor: dict[str, int]) -> list[tuple]:
        """Events after ``cursor`` in every stream, oldest first (by publish time).

        Raises :class:`ReplayTooOld` when they were removed or exceed the replay limit.
        """
        if self.loop is None:
            raise ConnectionError("the NATS bridge is not running")
        future = asyncio.run_coroutine_threadsafe(self._replay(cursor), self.loop)
        return future.result(timeout=REPLAY_SECONDS + 5)

    async def _replay(self, cursor: dict[str, int]) -> list[tuple]:
        """:meth:`_read_missed`, tried again while JetStream does not answer (a cluster
        electing new leaders) for up to ``REPLAY_SECONDS``."""
        loop = asyncio.get_running_loop()
        gives_up = loop.time() + REPLAY_SECONDS
        while True:
            try:
                return await self._read_missed(
                    self.client.jetstream(timeout=RESUME_TIMEOUT), cursor
                )
            except RETRY_ERRORS as exc:
                if loop.time() > gives_up or self._stop.is_set():
                    raise
                await self._retry_after("replaying from JetStream", exc, RETRY_PAUSE, logging.INFO)

    async def _read_missed(self, js, cursor: dict[str, int]) -> list[tuple]:
        found = []
        subjects_of = self._subjects_by_stream()
        for name, after in cursor.items():
            state = (await js.stream_info(name)).state
            if after < state.first_seq - 1:
                raise ReplayTooOld(f"events after {name}={after} were removed from {name}")
            if state.last_seq - after > self.replay_limit:
                raise ReplayTooOld(f"more than {self.replay_limit} events were missed")
            if state.last_seq > after:
                async for msg in self._read_after(js, name, subjects_of[name], after):
                    try:
                        event = parse(msg.subject, msg.data)
                    except MalformedMessage:
                        continue
                    meta = msg.metadata
                    found.append((meta.timestamp, name, meta.sequence.stream, event))
        found.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
        return [(name, seq, event) for _, name, seq, event in found]

    async def _read_after(self, js, name: str, subjects: list[str], after: int):
        """The stream's messages on ``subjects`` after sequence ``after``, in batches."""
        config = ConsumerConfig(
            filter_subjects=subjects,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30,
            mem_storage=True,
            num_replicas=1,
        )
        sub = await js.pull_subscribe(subjects[0], stream=name, config=config)
        try:
            pending = (await sub.consumer_info()).num_pending
            while pending > 0:
                batch = await sub.fetch(min(pending, REPLAY_BATCH), timeout=5)
                for msg in batch:
                    yield msg
                pending = batch[-1].metadata.num_pending
        finally:
            with contextlib.suppress(*RETRY_ERRORS):
                await sub.unsubscribe()
            with contextlib.suppress(*RETRY_ERRORS):
                await js.delete_consumer(name, config.name)  # pull_subscribe named it
