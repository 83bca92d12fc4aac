"""How live streams end (issue 32): a closed WebSocket's slot, a stalled or vanished SSE
client, a graceful reload. Each scenario runs on this checkout and, with ``--before REV``,
on the code of REV too (``git archive``), in the same run.

    python -m bench.live_endings --before 3b51da1 --write

Starts a nats-server and the reference host with the documented gunicorn command (each
tree's own host_example/gunicorn.conf.py), behind the documented nginx site where a row
says so, all settings at their defaults unless the row says otherwise:

- ``ws-close``: 3 WebSockets open at a cap of 3 on an idle feed; one closes (a close frame),
  and a new one is tried every 10 ms until it is accepted: the time its slot took to free.
- ``stalled``: 100 events/s of ~300 bytes; an SSE client (default socket buffers) reads its
  ``connected`` event and nothing more; at a cap of 1, a new stream is tried every 0.5 s
  until one opens: the time the server took to drop the stalled client.
- ``vanished``: an idle feed; the client's packets are dropped (nftables) after its
  ``connected`` event, as when a laptop sleeps or its network goes: the same measure.
- ``reload``: 20 SSE streams and 5 WebSockets on one worker (JetStream, 10 events/s), then
  ``kill -HUP``: when each stream ended and how, whether the old worker was killed, and
  whether the clients, resuming from their last ids, missed any event.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nats
import requests

from .live import free_port
from .report import publish

KEY = "bench"
ROOT = Path(__file__).resolve().parent.parent
CEILING = 300.0  # seconds a stalled client is waited for before the row says "more than"


class Host:
    """nats-server, then the reference host under gunicorn from ``tree``'s own config."""

    def __init__(self, tree: Path, tmp: Path, **settings):
        self.tree, self.tmp = tree, tmp
        self.nats_port, self.port = free_port(), free_port()
        self.log = tmp / f"gunicorn-{self.port}.log"
        self.settings = {
            "OMNI_DATABASE_URL": f"sqlite:///{tmp}/endings-{self.port}.db",
            "OMNI_API_KEY": KEY,
            "OMNI_NATS_URL": self.nats_url,
            "OMNI_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "1",
            **{key: str(value) for key, value in settings.items()},
        }

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Host":
        binary = Path(sys.executable).parent / "nats-server"
        store = self.tmp / f"js-{self.nats_port}"
        self.nats = subprocess.Popen(
            [str(binary), "-a", "127.0.0.1", "-p", str(self.nats_port), "-js", "-sd", str(store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.nats_port)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        command = [str(gunicorn), "-c", "host_example/gunicorn.conf.py"]
        command.append("host_example:create_app()")
        env = {**os.environ, "PYTHONPATH": str(self.tree), **self.settings}
        with self.log.open("ab") as log:
            self.server = subprocess.Popen(
                command, cwd=self.tree, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_port(self.port)
        return self

    def __exit__(self, *exc) -> None:
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(20)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.nats.kill()
        self.nats.wait()

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


class Nginx:
    """The nginx site of docs/live-feed.md in front of ``upstream`` (needs Debian's nginx)."""

    def __init__(self, tmp: Path, upstream: int):
        self.port, self.prefix = free_port(), tmp / f"nginx-{free_port()}"
        (self.prefix / "temp").mkdir(parents=True)
        doc = (ROOT / "docs" / "live-feed.md").read_text()
        site = re.search(r"```nginx\n(.*?)```", doc, re.S).group(1)
        site = site.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
        site = re.sub(r"listen\s+80\b", f"listen 127.0.0.1:{self.port}", site)
        temp = self.prefix / "temp"
        paths = "".join(
            f"  {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(
            f"user root;\nworker_processes 1;\npid {self.prefix}/nginx.pid;\n"
            f"error_log {self.prefix}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log off;\n{paths}{site}\n}}\n"
        )

    def __enter__(self) -> "Nginx":
        binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
        if binary is None:
            raise SystemExit("the nginx rows need Debian's nginx (apt-get install nginx)")
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"]
        )
        wait_port(self.port)
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def message(n: int, pad: str = "") -> dict:
    return {
        "id": f"{pad}m-{n}",
        "type": "message.received",
        "payload": {"text": "x" * 60},
        "timestamp": int(time.time() * 1000),
        "metadata": {"correlationId": str(n), "instanceId": "inst-1", "channelType": "slack"},
    }


class Publisher:
    """Publishes ``rate`` events a second in a thread until stopped; ``sent`` counts them."""

    def __init__(self, url: str, rate: float):
        self.url, self.rate, self.sent = url, rate, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Publisher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _run(self) -> None:
        import asyncio

        async def run():
            client = await nats.connect(self.url)
            began = time.monotonic()
            while not self.stopping.is_set():
                await client.publish(
                    "message.received.slack.inst-1", json.dumps(message(self.sent)).encode()
                )
                self.sent += 1
                await client.flush()
                await asyncio.sleep(max(0.0, began + self.sent / self.rate - time.monotonic()))
            await client.close()

        asyncio.run(run())


def raw_stream(port: int, last_id: str | None = None) -> socket.socket:
    """An SSE stream on a plain socket with default buffers, once its ``connected`` came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"GET /api/v2/events/stream HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
    resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
    sock.sendall(f"{head}{resume}\r\n".encode())
    while b"event: connected" not in sock.recv(65536, socket.MSG_PEEK):  # left unread
        time.sleep(0.01)
    return sock


def stream_opens(base: str) -> bool:
    response = requests.get(
        base + "/api/v2/events/stream", headers={"x-api-key": KEY}, stream=True, timeout=30
    )
    response.close()
    return response.status_code == 200


def until_slot_frees(base: str, began: float, every: float) -> float | None:
    """Seconds from ``began`` until a stream opens at the cap; None past CEILING."""
    while not stream_opens(base):
        if time.monotonic() - began > CEILING:
            return None
        time.sleep(every)
    return time.monotonic() - began


def ws_close(tree: Path, tmp: Path) -> str:
    from simple_websocket import Client, ConnectionError

    url_of = "ws://127.0.0.1:{}/api/v2/events/ws?api_key=" + KEY
    waits = []
    with Host(tree, tmp, OMNI_DASHBOARD_STREAM_MAX_CLIENTS=3, OMNI_HTTP_THREADS=3) as host:
        url = url_of.format(host.port)
        sockets = [Client.connect(url) for _ in range(3)]
        for _ in range(5):
            closing = sockets.pop(0)
            began = time.monotonic()
            closing.close()
            while True:
                try:
                    sockets.append(Client.connect(url))
                    break
                except ConnectionError:
                    time.sleep(0.01)
            waits.append(time.monotonic() - began)
        for ws in sockets:
            ws.close()
    return f"median {statistics.median(waits):.2f} s, longest {max(waits):.2f} s (5 closes)"


def stalled(tree: Path, tmp: Path, behind_nginx: bool) -> str:
    with (
        Host(tree, tmp, OMNI_DASHBOARD_STREAM_MAX_CLIENTS=1) as host,
        Publisher(host.nats_url, 100),
        contextlib.ExitStack() as stack,
    ):
        port = stack.enter_context(Nginx(tmp, host.port)).port if behind_nginx else host.port
        sock = raw_stream(port)
        took = until_slot_frees(host.base, time.monotonic(), 0.5)
        sock.close()
    return f"{took:.0f} s" if took is not None else f"not within {CEILING:.0f} s"


@contextlib.contextmanager
def packets_from(port: int):
    """Every packet from local port ``port`` is dropped (nftables) while inside."""
    nft = shutil.which("nft", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if nft is None:
        raise SystemExit("the vanished row needs nftables (apt-get install nftables), as root")
    table = f"omni_vanished_{port}"
    rule = (
        f"table inet {table} {{\n  chain input {{\n"
        f"    type filter hook input priority -10;\n    tcp sport {port} drop\n  }}\n}}\n"
    )
    subprocess.run([nft, "-f", "-"], input=rule, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run([nft, "delete", "table", "inet", table], check=False)


def vanished(tree: Path, tmp: Path) -> str:
    with Host(tree, tmp, OMNI_DASHBOARD_STREAM_MAX_CLIENTS=1) as host:
        sock = raw_stream(host.port)
        with packets_from(sock.getsockname()[1]):
            took = until_slot_frees(host.base, time.monotonic(), 0.5)
        sock.close()
    return f"{took:.0f} s" if took is not None else f"not within {CEILING:.0f} s"


def read_sse(sock: socket.socket, out: dict) -> None:
    """Read an SSE body to its end: the ids, whether it ended with its last chunk, when."""
    raw = b""
    sock.settimeout(120)
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            raw += chunk
            if raw.endswith(b"\r\n0\r\n\r\n"):
                break
    out["ended"] = time.monotonic()
    out["clean"] = raw.endswith(b"\r\n0\r\n\r\n")
    out["ids"] = re.findall(rb"\nid: (\S+)\nevent: event.received\ndata: \{\"id\":\"m-(\d+)\"", raw)
    out["false"] = b'"natsConnected":false' in raw


def read_ws(ws, out: dict) -> None:
    from simple_websocket import ConnectionClosed

    frames = []
    with contextlib.suppress(ConnectionClosed, OSError):
        while (text := ws.receive(timeout=120)) is not None:
            frames.append(json.loads(text))
    out["ended"], out["code"] = time.monotonic(), ws.close_reason
    out["ids"] = [(f["id"], f["data"]["id"]) for f in frames if f["event"] == "event.received"]
    out["false"] = any(f["data"].get("natsConnected") is False for f in frames)


def reload(tree: Path, tmp: Path) -> list[str]:
    from simple_websocket import Client

    with Host(tree, tmp, OMNI_DASHBOARD_STREAM_JETSTREAM="create") as host:
        sse = [raw_stream(host.port) for _ in range(20)]
        url = f"ws://127.0.0.1:{host.port}/api/v2/events/ws?api_key={KEY}"
        websockets = [Client.connect(url) for _ in range(5)]
        results = [{} for _ in range(25)]
        readers = [
            threading.Thread(target=read, args=(client, result))
            for read, client, result in zip(
                [read_sse] * 20 + [read_ws] * 5, sse + websockets, results, strict=True
            )
        ]
        old = host.workers()[0]
        with Publisher(host.nats_url, 10) as publisher:
            for reader in readers:
                reader.start()
            time.sleep(2)
            began = time.monotonic()
            host.server.send_signal(signal.SIGHUP)
            for reader in readers:
                reader.join(180)
            while Path(f"/proc/{old}").exists() and time.monotonic() - began < 180:
                time.sleep(0.1)
            old_exit = time.monotonic() - began
            time.sleep(2)
        missing = 0
        for result in results[:20]:  # resume each SSE client from its last id
            last = result["ids"][-1][0].decode() if result["ids"] else None
            sock = raw_stream(host.port, last)
            resumed: dict = {}
            threading.Timer(3, sock.shutdown, args=(socket.SHUT_RDWR,)).start()
            read_sse(sock, resumed)
            got = {int(n) for _, n in result["ids"] + resumed["ids"]}
            missing += len(set(range(publisher.sent)) - got)
        killed = "WORKER TIMEOUT" in host.log.read_text()
    ends = [r["ended"] - began for r in results]
    clean = sum(r["clean"] for r in results[:20])
    codes = sorted({str(r["code"]) for r in results[20:]})
    return [
        f"{max(ends):.1f} s (median {statistics.median(ends):.1f} s)",
        f"{clean}/20 with the last chunk; WebSocket close codes {', '.join(codes)}",
        str(sum(r["false"] for r in results)),
        f"{old_exit:.1f} s{' (killed: WORKER TIMEOUT)' if killed else ''}",
        str(missing),
    ]


def exported(rev: str, tmp: Path) -> Path:
    """The tree of ``rev`` (git archive), to run it beside this checkout."""
    tree = tmp / f"tree-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


SCENARIOS = {
    "ws-close": lambda tree, tmp: [
        ("a closed WebSocket's slot is free again after", ws_close(tree, tmp))
    ],
    "stalled": lambda tree, tmp: [
        ("a stalled SSE client (100 events/s) is dropped after", stalled(tree, tmp, False))
    ],
    "stalled-nginx": lambda tree, tmp: [("the same, behind nginx", stalled(tree, tmp, True))],
    "vanished": lambda tree, tmp: [
        ("a vanished client (idle feed) is dropped after", vanished(tree, tmp))
    ],
    "reload": lambda tree, tmp: list(
        zip(
            [
                "`kill -HUP`: every stream ended after",
                "how they ended",
                "`natsConnected: false` told to clients",
                "the old worker exited after",
                "events missed by the SSE clients after resuming",
            ],
            reload(tree, tmp),
            strict=True,
        )
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision to run beside this checkout")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="a comma list of scenarios")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trees = {"this checkout": ROOT}
        if args.before:
            trees = {args.before: exported(args.before, tmp), **trees}
        rows: dict[str, dict[str, str]] = {}
        for scenario in args.only.split(","):
            for label, tree in trees.items():
                for row, value in SCENARIOS[scenario](tree, tmp):
                    print(f"{label}: {row}: {value}", flush=True)
                    rows.setdefault(row, {})[label] = value
    labels = list(trees)
    lines = [
        "The reference host under the documented gunicorn command (one worker), defaults "
        "unless stated (heartbeat 15 s, send timeout 30 s, queue 1000); same machine, same run.",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
        *(
            f"| {row} | " + " | ".join(values[label] for label in labels) + " |"
            for row, values in rows.items()
        ),
    ]
    publish("live-endings", lines, args.write)


if __name__ == "__main__":
    main()
