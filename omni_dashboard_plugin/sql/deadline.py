"""A client-side deadline on every call an engine makes to PostgreSQL.

A server-side ``statement_timeout`` ends a statement the server runs too long; it does
nothing when the server never sees the statement, or its answer never arrives: a relay, a
stuck proxy or a frozen VM whose kernel still acknowledges every packet, so that TCP
keepalives and ``tcp_user_timeout`` never fire either. :func:`guard_engine` makes every
call the engine makes on a connection (statements, commit, rollback, the pool's ping and
its rollback on return) end within ``timeout_ms`` when that happens:

- A call still waiting after half the timeout gets a probe: a new connection asks
  ``pg_stat_activity`` whether the call's backend is running (state ``active``, not
  waiting to send us its answer). Running, the call is slow, not stuck: it goes on (the
  server's ``statement_timeout`` bounds it) and is asked about again every half timeout.
  Not running (idle, gone, or blocked writing to us), or no answer to the probe in the rest
  of the timeout: the call's socket is shut down, the driver fails the call at once with a
  disconnect error, the pool drops the connection and the host answers 503.
- A probe without an answer, or a connection attempt that timed out, marks the database
  *stuck*: calls then fail at once, and connection attempts are refused at once, until a
  probe answers again (one a second, in the background). A request meets a stuck database
  once, not once per connection it tries.
- New connections wait at most ``connect_timeout`` (set when the engine's connect
  arguments do not: half the timeout in whole seconds, at least 2, libpq's least).

Works with drivers whose connections expose their socket (``fileno()``) and backend pid
(psycopg2, psycopg 3); other dialects are left alone.
"""

import contextlib
import logging
import math
import os
import socket
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sqlalchemy import event

log = logging.getLogger(__name__)

# The dialect's methods that wait on the server: their first argument is a cursor, or a
# connection (a DBAPI one, or the pool's proxy of one).
ON_CURSOR = ("do_execute", "do_execute_no_params", "do_executemany")
ON_CONNECTION = ("do_commit", "do_rollback", "do_ping")
RUNNING = frozenset({"active", "fastpath function call"})
SENDING = "ClientWrite"  # the wait of a backend whose answer does not get through
RETRY_SECONDS = 1.0
IDLE_SECONDS = 60.0  # the watchdog thread ends after this long without calls
UNKNOWN = object()  # the probe was answered with an error: the server is there
_guards: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def guard_engine(engine, timeout_ms: int) -> "Deadline | None":
    """Hold every call of ``engine`` to ``timeout_ms`` when the server stops answering
    (see the module); call it right after ``create_engine``, before the first connection
    (it connects in a ``do_connect`` listener: one added after it does not run).
    Idempotent; ``None`` (and nothing done) for a dialect other than PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return None
    if engine not in _guards:
        _guards[engine] = Deadline(engine, timeout_ms)
    return _guards[engine]


@dataclass(eq=False)
class _Call:
    """A call waiting on the server: a duplicate of its socket (valid until the call
    ends, whatever the driver does with its own), its backend and when to ask about it."""

    socket: int
    pid: int | None
    ask_at: float
    ended: bool = False


def _shut(fd: int) -> None:
    """Shut the socket down both ways: a read or write waiting on it returns at once."""
    sock = socket.socket(fileno=fd)
    try:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.detach()


def _backend_pid(connection) -> int | None:
    info = getattr(connection, "info", None)
    pid = getattr(info, "backend_pid", None)
    return pid if isinstance(pid, int) else None


def _running(answer, waiting: _Call) -> bool:
    """Whether a probe's answer says that the server is running the call (a call whose
    backend is unknown counts as running while the server answers)."""
    if answer is None:
        return False
    if answer is UNKNOWN or waiting.pid is None:
        return True
    state, wait = answer.get(waiting.pid, (None, None))
    return state in RUNNING and wait != SENDING


class Deadline:
    """The deadline of one engine's calls: its watchdog thread, probes and stuck state."""

    def __init__(self, engine, timeout_ms: int):
        seconds = timeout_ms / 1000
        self.ask_after = seconds / 2
        self.probe_budget = max(0.5, seconds / 2 - 0.5)
        self.connect_timeout = max(2, int(seconds / 2))
        self.dialect = engine.dialect
        self.stuck = False
        self._connect_args: tuple[tuple, dict] | None = None
        self._reset()
        for name in ON_CURSOR:
            self._wrap(name, lambda cursor: cursor.connection)
        for name in ON_CONNECTION:
            self._wrap(name, lambda connection: getattr(connection, "dbapi_connection", connection))
        event.listen(engine, "do_connect", self._connect)
        owner = weakref.ref(self)

        def reset_in_child() -> None:
            deadline = owner()
            if deadline is not None:
                deadline._reset()

        os.register_at_fork(after_in_child=reset_in_child)

    def _reset(self) -> None:
        """Fresh state (at start, and in a forked child, where no thread of it runs)."""
        self._cond = threading.Condition()
        self._calls: set[_Call] = set()
        self._watchdog: threading.Thread | None = None
        self._probes: ThreadPoolExecutor | None = None
        self._wake_at = math.inf  # when the watchdog wakes, unless told
        self.stuck = False

    def _wrap(self, name: str, connection_of) -> None:
        call = getattr(self.dialect, name)

        def guarded(first, *args, **kwargs):
            waiting = self._enter(connection_of(first))
            try:
                return call(first, *args, **kwargs)
            finally:
                self._leave(waiting)

        setattr(self.dialect, name, guarded)

    def _connect(self, dialect, _record, cargs, cparams):
        """The engine's connect: refused at once while stuck; a timeout marks it stuck."""
        cparams.setdefault("connect_timeout", self.connect_timeout)
        self._connect_args = (tuple(cargs), dict(cparams))
        if self.stuck:
            raise dialect.loaded_dbapi.OperationalError(
                "the database does not answer (client-side deadline); not connecting until it does"
            )
        began = time.monotonic()
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError:
            if time.monotonic() - began >= int(cparams["connect_timeout"]) - 0.5:
                self._mark(stuck=True)
            raise

    def _enter(self, connection) -> _Call | None:
        try:
            fd = os.dup(connection.fileno())
        except Exception:  # no socket (closed, or not a libpq driver): the call says why
            return None
        waiting = _Call(fd, _backend_pid(connection), time.monotonic() + self.ask_after)
        with self._cond:
            if self.stuck:
                self._end(waiting)
            self._calls.add(waiting)
            if waiting.ask_at < self._wake_at:
                self._cond.notify()
            self._start_watchdog()
        return waiting

    def _start_watchdog(self) -> None:
        """Start the watchdog thread, once per process (under the lock)."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="omni-db-deadline", daemon=True
            )
            self._watchdog.start()

    def _leave(self, waiting: _Call | None) -> None:
        if waiting is None:
            return
        with self._cond:
            self._calls.discard(waiting)
            waiting.ended = True
            os.close(waiting.socket)

    @staticmethod
    def _end(waiting: _Call) -> None:
        """End a call (under the lock, before it left)."""
        if not waiting.ended:
            waiting.ended = True
            _shut(waiting.socket)

    def _mark(self, *, stuck: bool) -> None:
        with self._cond:
            if stuck != self.stuck:
                if stuck:
                    log.warning("the database does not answer: calls fail until it does")
                else:
                    log.info("the database answers again")
            self.stuck = stuck
            self._cond.notify()
            self._start_watchdog()

    def _due(self, now: float) -> list[_Call]:
        return [c for c in self._calls if not c.ended and c.ask_at <= now]

    def _next(self, retry_at: float) -> tuple[list[_Call], bool] | None:
        """Wait (under the lock) for calls to ask about, or, while stuck, for the time to
        probe again; a call that comes due while stuck ends without a probe. ``None``:
        nothing to watch for a while, the thread may end."""
        while True:
            now = time.monotonic()
            due = self._due(now)
            if self.stuck:
                for waiting in due:
                    self._end(waiting)
                if now >= retry_at:
                    return [], True
            elif due:
                return due, False
            wakes = [c.ask_at for c in self._calls if not c.ended]
            if self.stuck:
                wakes.append(retry_at)
            self._wake_at = min(wakes, default=math.inf)
            if wakes:
                self._cond.wait(self._wake_at - now)
            elif not self._cond.wait(IDLE_SECONDS) and not self._calls:
                self._watchdog = None
                return None

    def _watch(self) -> None:
        retry_at = 0.0
        while True:
            with self._cond:
                found = self._next(retry_at)
                if found is None:
                    return
                due, stuck = found
            answer = self._ask(sorted({c.pid for c in due if c.pid is not None}))
            if answer is None:
                self._mark(stuck=True)
                retry_at = time.monotonic() + RETRY_SECONDS
            elif stuck:
                self._mark(stuck=False)
            with self._cond:
                now = time.monotonic()
                for waiting in due:
                    if _running(answer, waiting):
                        waiting.ask_at = now + self.ask_after
                    else:
                        self._end(waiting)

    def _ask(self, pids: list[int]):
        """The states of the backends ``pids`` (``{pid: (state, wait event)}``, a pid gone
        absent), from a new connection; ``None`` when no answer comes within the probe's budget,
        ``UNKNOWN`` when the server answered with an error (too many connections, say)."""
        if self._connect_args is None:
            return UNKNOWN
        if self._probes is None:
            self._probes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-db-probe")
        pending = self._probes.submit(self._probe, self._connect_args, pids)
        try:
            return pending.result(timeout=self.probe_budget)
        except FutureTimeout:
            return None
        except Exception as exc:  # answered, with an error: the server is there
            log.info("database probe refused: %s", exc)
            return UNKNOWN

    def _probe(self, connect_args: tuple[tuple, dict], pids: list[int]) -> dict:
        cargs, cparams = connect_args
        connection = self.dialect.loaded_dbapi.connect(*cargs, **cparams)
        try:
            connection.autocommit = True
            cursor = connection.cursor()
            if not pids:
                cursor.execute("SELECT 1")
                return {}
            listed = ", ".join(str(int(pid)) for pid in pids)
            cursor.execute(
                f"SELECT pid, state, wait_event FROM pg_stat_activity WHERE pid IN ({listed})"
            )
            return {pid: (state, wait) for pid, state, wait in cursor.fetchall()}
        finally:
            connection.close()
