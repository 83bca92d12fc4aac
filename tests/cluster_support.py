"""A real three-node NATS cluster (routes, JetStream) on loopback free ports, and a
publisher that knows which events JetStream stored."""

import asyncio
import json
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import ServiceUnavailableError

from .live_support import (
    NATS_BINARY,
    free_port,
    omni_message,
    outside_any_loop,
    subject_of,
    wait_for_port,
)
from .waiting import wait_until

API_TRY = 5.0  # seconds one JetStream API request waits before it is asked again
UNANSWERED = (NatsTimeout, NoRespondersError, ServiceUnavailableError)


def jetstream_call(servers: list[str], call, what: str):
    """``await call(jetstream)`` on a new connection to ``servers``, asked again until
    ``CEILING`` while it goes unanswered: JetStream may answer no request at all while a
    stream elects its leader or changes its replicas, so one long wait can miss the answer
    a second request gets at once."""

    async def attempt():
        client = await nats.connect(servers=servers, error_cb=_quiet)
        try:
            return [await call(client.jetstream(timeout=API_TRY))]
        except UNANSWERED:
            return None
        finally:
            await client.close()

    return wait_until(lambda: outside_any_loop(attempt), what)[0]


class NatsCluster:
    """``size`` nats-server processes routed to each other, JetStream on, one store each.

    Node ``i`` is named ``n{i}``; a test kills one with :meth:`kill` (SIGKILL).
    """

    def __init__(self, store: Path, size: int = 3):
        self.store = store
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.monitor_ports = [free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.client_ports]

    def name(self, index: int) -> str:
        return f"n{index}"

    def index_of(self, name: str) -> int:
        return int(name[1:])

    def start(self) -> "NatsCluster":
        self.store.mkdir(parents=True, exist_ok=True)
        for index, port in enumerate(self.client_ports):
            routes = ",".join(
                f"nats://127.0.0.1:{route}"
                for other, route in enumerate(self.route_ports)
                if other != index
            )
            command = [
                str(NATS_BINARY),
                *("-a", "127.0.0.1", "-p", str(port), "--server_name", self.name(index)),
                *("-m", str(self.monitor_ports[index])),
                *("-js", "-sd", str(self.store / self.name(index))),
                *("--cluster_name", "omni", "--routes", routes),
                *("--cluster", f"nats://127.0.0.1:{self.route_ports[index]}"),
            ]
            with (self.store / f"{self.name(index)}.log").open("ab") as log:
                self.processes[index] = subprocess.Popen(command, stdout=log, stderr=log)
        for port in self.client_ports:
            wait_for_port(port)
        self._until_jetstream_ready()
        return self

    def _meta_group(self, index: int) -> dict:
        """Node ``index``'s view of JetStream's meta group (its monitoring port)."""
        url = f"http://127.0.0.1:{self.monitor_ports[index]}/jsz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["meta_cluster"]

    def _until_jetstream_ready(self) -> None:
        """Wait until JetStream's meta group has a leader that every other node follows
        (before that, a stream of three replicas finds no peers to be placed on)."""

        def formed() -> bool:
            leader = self._meta_group(0).get("leader")
            if not leader:
                return False
            followers = self._meta_group(self.index_of(leader)).get("replicas") or []
            return sum(peer["current"] for peer in followers) == len(self.urls) - 1

        wait_until(formed, "JetStream's meta group to form")

    def kill(self, index: int) -> None:
        """kill -9 node ``index``."""
        process = self.processes[index]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.processes[index] = None

    def stop(self) -> None:
        for index, process in enumerate(self.processes):
            if process is not None:
                process.kill()
                process.wait(10)
                self.processes[index] = None

    def stream_info(self, stream: str):
        """JetStream's info of ``stream`` (its config, state and cluster placement)."""

        return jetstream_call(self.urls, lambda js: js.stream_info(stream), f"{stream}'s info")

    def meta_leader(self) -> str:
        """The name of JetStream's meta leader (as a live node sees it)."""
        index = next(i for i, process in enumerate(self.processes) if process is not None)
        return self._meta_group(index)["leader"]

    def move_stream_leader(self, stream: str, to: str) -> None:
        """Make node ``to`` the leader of ``stream`` (a stepdown preferring it)."""
        request = json.dumps({"placement": {"preferred": to}}).encode()

        async def step_down():
            client = await nats.connect(servers=self.urls, error_cb=_quiet)
            try:
                await client.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", request, API_TRY)
            except UNANSWERED:
                pass  # asked again below, until the leader has moved
            finally:
                await client.close()

        def moved() -> bool:
            if self.stream_info(stream).cluster.leader == to:
                return True
            outside_any_loop(step_down)
            return False

        wait_until(moved, f"{stream}'s leader to move to {to}")

    def wait_for_replicas(self, stream: str, replicas: int) -> None:
        """Wait until ``stream`` has a leader and ``replicas - 1`` current followers (a
        stream whose replicas are still catching up would not outlive its leader)."""

        def placed() -> bool:
            placement = self.stream_info(stream).cluster
            followers = [peer for peer in placement.replicas or [] if peer.current]
            return bool(placement.leader) and len(followers) == replicas - 1

        wait_until(placed, f"{stream} to have a leader and {replicas - 1} current followers")


async def _quiet(_exc) -> None:
    """nats-py's error callback: the cluster losing a node is expected here."""


class StoredPublisher:
    """Publishes numbered Omni events through JetStream every ``interval`` seconds, each
    retried (with its message id, so that JetStream stores it once) until the stream
    acknowledges it: ``stored`` lists (number, monotonic time of the ack) in order, and
    ``sent`` the monotonic time of each number's first try."""

    def __init__(self, servers: list[str], interval: float = 0.02):
        self.servers = servers
        self.interval = interval
        self.stored: list[tuple[int, float]] = []
        self.sent: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> "StoredPublisher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def numbers(self) -> list[int]:
        return [n for n, _ in list(self.stored)]

    async def _run(self) -> None:
        client = await nats.connect(servers=self.servers, reconnect_time_wait=0.1, error_cb=_quiet)
        js = client.jetstream()
        n = 0
        while not self._stop.is_set():
            message = omni_message("message.received", n=n)
            data = json.dumps(message).encode()
            self.sent[n] = time.monotonic()
            while True:
                try:
                    await js.publish(
                        subject_of(message), data, timeout=1, headers={"Nats-Msg-Id": str(n)}
                    )
                    break
                except Exception:  # no leader or no connection yet: the same event again
                    await asyncio.sleep(0.05)
            self.stored.append((n, time.monotonic()))
            n += 1
            await asyncio.sleep(self.interval)
        await client.close()
