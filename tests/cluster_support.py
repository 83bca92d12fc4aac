"""A real three-node NATS cluster (routes, JetStream) on loopback free ports, and a
publisher that knows which events JetStream stored."""

import asyncio
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import nats

from .live_support import (
    NATS_BINARY,
    free_port,
    omni_message,
    outside_any_loop,
    subject_of,
    wait_for_port,
)


class NatsCluster:
    """``size`` nats-server processes routed to each other, JetStream on, one store each.

    Node ``i`` is named ``n{i}``; a test kills one with :meth:`kill` (SIGKILL).
    """

    def __init__(self, store: Path, size: int = 3):
        self.store = store
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
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
                *("-js", "-sd", str(self.store / self.name(index))),
                *("--cluster_name", "omni", "--routes", routes),
                *("--cluster", f"nats://127.0.0.1:{self.route_ports[index]}"),
            ]
            with (self.store / f"{self.name(index)}.log").open("ab") as log:
                self.processes[index] = subprocess.Popen(command, stdout=log, stderr=log)
        for port in self.client_ports:
            wait_for_port(port)
        outside_any_loop(self._until_jetstream_ready)
        return self

    async def _until_jetstream_ready(self, timeout: float = 30.0) -> None:
        """Wait until the cluster's JetStream has a meta leader (it answers account info)."""
        client = await nats.connect(servers=self.urls, error_cb=_quiet)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    await client.jetstream().account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await client.close()

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

        async def info():
            client = await nats.connect(servers=self.urls, error_cb=_quiet)
            try:
                return await client.jetstream().stream_info(stream)
            finally:
                await client.close()

        return outside_any_loop(info)

    def wait_for_replicas(self, stream: str, replicas: int, timeout: float = 30.0) -> None:
        """Wait until ``stream`` has a leader and ``replicas - 1`` current followers (a
        stream whose replicas are still catching up would not outlive its leader)."""
        deadline = time.monotonic() + timeout
        while True:
            placement = self.stream_info(stream).cluster
            followers = [peer for peer in placement.replicas or [] if peer.current]
            if placement.leader and len(followers) == replicas - 1:
                return
            assert time.monotonic() < deadline, f"{stream}: {placement}"
            time.sleep(0.1)


async def _quiet(_exc) -> None:
    """nats-py's error callback: the cluster losing a node is expected here."""


class StoredPublisher:
    """Publishes numbered Omni events through JetStream every ``interval`` seconds, each
    retried (with its message id, so that JetStream stores it once) until the stream
    acknowledges it: ``stored`` lists (number, monotonic time of the ack) in order."""

    def __init__(self, servers: list[str], interval: float = 0.02):
        self.servers = servers
        self.interval = interval
        self.stored: list[tuple[int, float]] = []
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
