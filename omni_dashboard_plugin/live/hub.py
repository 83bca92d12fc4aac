"""Fan-out of feed events to per-client bounded queues, with ids and a replay buffer.

Every method is thread-safe: the NATS bridge (its asyncio thread) or an in-process
publisher calls :meth:`Hub.publish`; request threads subscribe and read their queue.
"""

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import cursor as ids
from .frames import sse_frame
from .mailbox import Mailbox
from .messages import FeedEvent

BUFFER = "buffer"
JETSTREAM = "jetstream"
# Where a ``reset`` sends the client: the summary, then it keeps streaming.
REFETCH = "/api/v2/dashboard"
log = logging.getLogger(__name__)


def reset_notice(reason: str) -> dict:
    """The data of a ``reset`` event."""
    return {"reason": reason, "refetch": REFETCH}


class FeedMeter:
    """What the hub reports as it works (for metrics); this one ignores it all."""

    def delivered(self) -> None:
        """An item was queued for a client."""

    def overflowed(self) -> None:
        """A client fell behind and was let go."""

    def reset_sent(self) -> None:
        """A client was told to refetch (``reset``)."""

    def replayed(self) -> None:
        """A client resumed from its last id with the events it missed."""

    def replay_failed(self) -> None:
        """A client's missed events could not be read from JetStream (it gets ``reset``)."""

    def malformed(self) -> None:
        """A NATS message was skipped: it is not an Omni event."""

    def duplicate(self) -> None:
        """A JetStream message was dropped: it was published already (redelivered)."""

    def clients(self, count: int) -> None:
        """The number of clients changed to ``count``."""

    def nats_connected(self, connected: bool) -> None:
        """The bridge's NATS state changed."""


@dataclass(frozen=True)
class Filters:
    """What a client asked for; empty means everything."""

    instance_id: str | None = None
    channel: str | None = None
    types: frozenset[str] = frozenset()

    def accept(self, event: FeedEvent) -> bool:
        """Whether ``event`` passes every filter (types match the Omni event type)."""
        return (
            (self.instance_id is None or event.instance_id == self.instance_id)
            and (self.channel is None or event.channel == self.channel)
            and (not self.types or event.event_type in self.types)
        )


@dataclass(frozen=True)
class Item:
    """One frame for a client: SSE event name, id, data; ``final`` closes the stream.

    ``text`` is the SSE frame rendered once for every client that shares the item.
    """

    name: str
    id: str
    data: dict
    final: bool = False
    text: str | None = None

    def sse(self) -> str:
        """The item as SSE text."""
        return self.text if self.text is not None else sse_frame(self.name, self.id, self.data)


# The server is stopping: the stream ends here, cleanly, with nothing more written (an SSE
# body's last chunk; a WebSocket's close). Clients reconnect and resume from their last id.
END = Item("end", "", {}, final=True, text="")


@dataclass(eq=False)
class Subscription:
    """A client's place in the feed: its filters, cursor and bounded queue.

    ``arrived_during_replay`` holds live events that came while its JetStream replay ran
    (``None`` when none runs); ``caught_up`` says its cursor is the hub's, so that a live
    event is its next one.
    """

    filters: Filters
    cursor: ids.Cursor
    queue: Mailbox
    arrived_during_replay: list | None = None
    closed: bool = False
    last_id: str = ""
    caught_up: bool = False
    on_overflow: Callable[[], None] | None = None

    def current_id(self) -> str:
        return ids.encode(self.cursor)


@dataclass
class Opening:
    """What a new subscription begins with: replayed items, or a reset."""

    subscription: Subscription
    begin_id: str = ""
    replay: list[Item] = field(default_factory=list)
    reset: str | None = None


class Hub:
    """The process's fan-out point.

    ``nats_connected`` is None without a NATS bridge (``nats``), else False until the bridge
    first connects.
    """

    def __init__(
        self,
        replay_size: int,
        queue_size: int,
        max_clients: int,
        meter: FeedMeter | None = None,
        nats: bool = False,
    ):
        self.queue_size = queue_size
        self.meter = meter or FeedMeter()
        self.max_clients = max_clients
        self.epoch = "@" + uuid.uuid4().hex[:12]
        self.mode = BUFFER
        self.nats_connected: bool | None = False if nats else None
        self._lock = threading.Lock()
        self._cursor: ids.Cursor = {self.epoch: 0}
        self._buffer: deque = deque(maxlen=replay_size)
        self._subscribers: list[Subscription] = []
        self._listeners: list[Callable[[], None]] = []
        self._ending = False
        self.replayer: Callable | None = None
        self._gap_after = -1  # buffer mode: events after this sequence may be missing

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (without arguments) after items were queued for clients."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    # --- the publishing side -------------------------------------------------------

    def use_jetstream(self, last_sequences: dict[str, int], reset: str | None = None) -> None:
        """Switch ids to JetStream sequences, starting after ``last_sequences``.

        With ``reset`` (events were lost), every client gets ``reset`` and follows on.
        """
        with self._lock:
            self.mode = JETSTREAM
            self._cursor = dict(last_sequences)
            self._buffer.clear()
            if reset is None:
                return
            notice = reset_notice(reset)
            for sub in list(self._subscribers):
                if sub.arrived_during_replay is None:
                    sub.cursor, sub.caught_up = dict(self._cursor), True
                    self._put(sub, Item("reset", sub.current_id(), notice))
        self._notify()

    def cursor(self) -> ids.Cursor:
        """The last sequence published per stream."""
        with self._lock:
            return dict(self._cursor)

    def publish(self, event: FeedEvent, stream: str | None = None, seq: int | None = None):
        """Deliver ``event`` to every subscriber whose filters accept it.

        Buffer mode numbers it; JetStream mode passes its stream and sequence.
        """
        with self._lock:
            if stream is None or seq is None:
                stream, seq = self.epoch, self._cursor[self.epoch] + 1
            elif seq <= self._cursor.get(stream, 0):
                self.meter.duplicate()  # redelivered (a consumer recreated after an outage)
                return
            self._cursor[stream] = seq
            if self.mode == BUFFER:
                self._buffer.append((seq, event))
            shared = None
            for sub in list(self._subscribers):  # an overflow removes its subscriber
                if sub.arrived_during_replay is not None:
                    sub.arrived_during_replay.append((stream, seq, event))
                elif sub.caught_up:
                    # A client that is caught up has the hub's cursor: one item serves all.
                    sub.cursor[stream] = seq
                    if sub.filters.accept(event):
                        if shared is None:
                            shared_id = ids.encode(self._cursor)
                            text = sse_frame(event.name, shared_id, event.data)
                            shared = Item(event.name, shared_id, event.data, text=text)
                        self._put(sub, shared)
                else:
                    self._offer(sub, stream, seq, event)
        self._notify()

    def set_nats_connected(self, connected: bool) -> None:
        """Record the bridge's NATS state and tell every client when it changes.

        In buffer mode events published while NATS was away are lost to this process: when
        it comes back, every client gets ``reset``, and an id from before the outage
        resumes with ``reset`` too. (JetStream mode replays them instead.)
        """
        with self._lock:
            changed = self.nats_connected is not None and self.nats_connected != connected
            self.nats_connected = connected
            self.meter.nats_connected(connected)
            if not changed:
                return
            gap = connected and self.mode == BUFFER
            if gap:  # the gap takes a sequence number of its own
                self._gap_after = self._cursor[self.epoch]
                self._cursor[self.epoch] += 1
            reset = reset_notice("the feed was interrupted")
            for sub in list(self._subscribers):
                if sub.arrived_during_replay is None:
                    self._put(sub, Item("status", sub.current_id(), self.status_data()))
                    if gap:
                        sub.cursor[self.epoch] = self._cursor[self.epoch]
                        self._put(sub, Item("reset", sub.current_id(), reset))
        self._notify()

    def status_data(self) -> dict:
        """The body of ``connected`` and ``status`` events."""
        return {"mode": self.mode, "natsConnected": self.nats_connected}

    def _offer(self, sub: Subscription, stream: str, seq: int, event: FeedEvent) -> None:
        if seq <= sub.cursor.get(stream, 0):
            return  # already delivered by the replay
        sub.cursor[stream] = seq
        if sub.filters.accept(event):
            self._put(sub, Item(event.name, sub.current_id(), event.data))

    def _put(self, sub: Subscription, item: Item) -> None:
        if sub.closed:
            return
        if len(sub.queue) < self.queue_size:
            sub.queue.put(item)
            sub.last_id = item.id
            self.meter.delivered()
            if item.name == "reset":
                self.meter.reset_sent()
            return
        # The client fell behind: it gets what is queued, then a final overflow notice
        # carrying the id of the last queued event, unless its socket is full: then it is
        # hung up on at once (``on_overflow``), and resumes from what it received.
        sub.closed = True
        self.meter.overflowed()
        self._subscribers.remove(sub)
        self.meter.clients(len(self._subscribers))
        notice = {"reason": "client too slow", "resumeWith": "Last-Event-ID"}
        sub.queue.put(Item("overflow", sub.last_id, notice, final=True))
        if sub.on_overflow is not None:
            sub.on_overflow()

    # --- the subscribing side ------------------------------------------------------

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def end_streams(self) -> None:
        """End every stream now with :data:`END`, and take no new ones (the server stops)."""
        with self._lock:
            self._ending = True
            ended, self._subscribers = self._subscribers, []
            for sub in ended:  # no longer subscribed: nothing follows END
                sub.queue.put(END)
            self.meter.clients(0)
        self._notify()

    def subscribe(self, filters: Filters, after: str | None) -> Opening | None:
        """Register a client; ``None`` when the process is at its client cap or stopping.

        ``after`` is the id the client last saw (Last-Event-ID): the start holds every
        missed event, or a reset when they can no longer be replayed.
        """
        with self._lock:
            if self._ending or len(self._subscribers) >= self.max_clients:
                return None
            sub = Subscription(filters, dict(self._cursor), Mailbox())
            sub.last_id = sub.current_id()
            start = Opening(sub, begin_id=sub.current_id())
            wanted = self._resume_point(after, start)
            if wanted is not None:
                start.begin_id = ids.encode(wanted)
            if wanted is not None and self.mode == BUFFER:
                start.replay = self._replay_buffer(sub, wanted)
                sub.last_id = start.replay[-1].id if start.replay else sub.current_id()
            elif wanted is not None:
                sub.arrived_during_replay = []
                sub.cursor = wanted
            sub.caught_up = sub.arrived_during_replay is None and sub.cursor == self._cursor
            self._subscribers.append(sub)
            self.meter.clients(len(self._subscribers))
        if sub.arrived_during_replay is not None and self.replayer is not None:
            self._finish_jetstream_replay(start, self.replayer)
        if start.reset:
            self.meter.reset_sent()
        elif after:
            self.meter.replayed()
        return start

    def _resume_point(self, after: str | None, start: Opening) -> ids.Cursor | None:
        if not after:
            return None
        try:
            wanted = ids.decode(after)
        except ids.BadCursor:
            start.reset = "unknown id"
            return None
        if set(wanted) != set(self._cursor):
            start.reset = "the id is from another server or feed mode"
            return None
        if any(seq > self._cursor[name] for name, seq in wanted.items()):
            start.reset = "the id is ahead of this server"
            return None
        if self.mode == BUFFER:
            oldest = self._buffer[0][0] if self._buffer else self._cursor[self.epoch] + 1
            if wanted[self.epoch] < oldest - 1:
                start.reset = "the missed events are older than the replay buffer"
                return None
            if wanted[self.epoch] <= self._gap_after:
                start.reset = "the feed was interrupted since that id"
                return None
        return wanted

    def _replay_buffer(self, sub: Subscription, wanted: ids.Cursor) -> list[Item]:
        sub.cursor = dict(wanted)
        items = []
        for seq, event in self._buffer:
            if seq > wanted[self.epoch]:
                sub.cursor[self.epoch] = seq
                if sub.filters.accept(event):
                    items.append(Item(event.name, sub.current_id(), event.data))
        return items

    def _finish_jetstream_replay(self, start: Opening, replayer: Callable) -> None:
        sub = start.subscription
        try:
            missed = replayer(dict(sub.cursor))
        except ReplayTooOld as exc:
            missed, start.reset = [], str(exc)
        except Exception as exc:  # NATS unreachable or slow: the client refetches instead
            log.warning(
                "replaying a resuming client's missed events from JetStream failed: %r; "
                "it gets reset and refetches the summary",
                exc,
            )
            self.meter.replay_failed()
            missed, start.reset = [], "the missed events cannot be read from JetStream now"
        with self._lock:
            if start.reset:
                sub.cursor = dict(self._cursor)
            for stream, seq, event in missed:
                if seq > sub.cursor.get(stream, 0):
                    sub.cursor[stream] = seq
                    if sub.filters.accept(event):
                        start.replay.append(Item(event.name, sub.current_id(), event.data))
            sub.last_id = start.replay[-1].id if start.replay else sub.current_id()
            arrived, sub.arrived_during_replay = sub.arrived_during_replay or [], None
            for stream, seq, event in arrived:
                self._offer(sub, stream, seq, event)
            sub.caught_up = sub.cursor == self._cursor

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a client (its stream ended)."""
        with self._lock:
            sub.closed = True
            if sub in self._subscribers:
                self._subscribers.remove(sub)
                self.meter.clients(len(self._subscribers))


class ReplayTooOld(Exception):
    """The missed events are no longer in JetStream, or too many to replay."""
