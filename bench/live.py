"""Live feed throughput and latency: NATS -> one server process -> N SSE clients.

    python -m bench.live --write

Starts its own nats-server and one example-host process (gunicorn gthread by default, in
the default writer mode), opens N SSE clients (asyncio, in this process), publishes at a
fixed rate and measures, per delivery, publish-to-receive latency; then deliveries per
second, lost events, and the server's resident memory per idle client. It raises the rate
with the largest N until deliveries fall behind, to find what one process sustains; last,
it runs the largest N again beside stalled clients (``--stalled``: sockets that never read,
filled before the measurement), whose readers' latency must not suffer.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from .report import write_section

KEY = "bench"
ROOT = Path(__file__).resolve().parent.parent
SERVE = """
import os, sys
if os.environ.get("BENCH_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
from werkzeug.serving import run_simple
from host_example import create_app
app = create_app({"OMNI_DATABASE_URL": sys.argv[1], "OMNI_API_KEY": "bench",
                  "OMNI_NATS_URL": sys.argv[2], "OMNI_DASHBOARD_STREAM_MAX_CLIENTS": 5000,
                  "OMNI_DASHBOARD_STREAM_QUEUE": 100000})
run_simple("127.0.0.1", int(sys.argv[3]), app, threaded=True)
"""


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(port)


class Client:
    """One SSE client on a raw asyncio connection, recording receive times."""

    def __init__(self):
        self.latencies: list[float] = []
        self.seen: set[str] = set()
        self.connected = asyncio.Event()

    async def run(self, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (
            f"GET /api/v2/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"event: connected"):
                    self.connected.set()
                elif line.startswith(b'data: {"id"'):
                    now = time.time()
                    data = json.loads(line[6:])
                    sent = float(data["id"].split("@", 1)[1])
                    self.latencies.append((now - sent) * 1000)
                    self.seen.add(data["id"])
        finally:
            writer.close()


async def publish(url, rate, seconds):
    client = await nats.connect(url)
    count = int(rate * seconds)
    start = time.perf_counter()
    for n in range(count):
        target = start + n / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = {
            "id": f"{n}@{time.time():.6f}",
            "type": "message.received",
            "payload": {},
            "timestamp": int(time.time() * 1000),
            "metadata": {"correlationId": str(n), "instanceId": "i", "channelType": "slack"},
        }
        await client.publish("message.received.slack.i", json.dumps(body).encode())
    await client.flush()
    await client.close()
    return count


def worker_pid(arbiter: int) -> int:
    """gunicorn's (single) worker process under its arbiter."""
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
    return int(children[0])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stall(port: int, count: int) -> list[socket.socket]:
    """``count`` SSE clients that never read, their sockets filled with large events."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /api/v2/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n\r\n"
    ).encode()
    stalled = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, request)
        stalled.append(sock)
    return stalled


async def fill(url: str, megabytes: int) -> None:
    """Publish ``megabytes`` of large events (their ids padded), to fill stalled sockets."""
    client = await nats.connect(url)
    pad = "p" * 8000
    for n in range(megabytes * 128):
        body = {
            "id": f"{pad}{n}@{time.time():.6f}",
            "type": "message.received",
            "payload": {},
            "timestamp": int(time.time() * 1000),
            "metadata": {"correlationId": str(n), "instanceId": "i", "channelType": "slack"},
        }
        await client.publish("message.received.slack.i", json.dumps(body).encode())
        if n % 64 == 0:
            await client.flush()
            await asyncio.sleep(0.01)
    await client.flush()
    await client.close()


async def scenario(port, nats_url, server_pid, clients, rate, seconds, stalled=0):
    before = rss_kb(server_pid)
    group = [Client() for _ in range(clients)]
    tasks = [asyncio.create_task(c.run(port)) for c in group]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in group)), 60)
    await asyncio.sleep(1.0)
    idle = rss_kb(server_pid)
    stalled_sockets = await stall(port, stalled)
    if stalled:
        await fill(nats_url, 8)  # more than a socket's buffers hold: the writer keeps the rest
    await publish(nats_url, rate, 2)  # warm-up, not measured
    await asyncio.sleep(1.0)
    for c in group:
        c.latencies.clear()
        c.seen.clear()
    started = time.perf_counter()
    cpu_server, cpu_client = cpu_seconds(server_pid), cpu_seconds(os.getpid())
    published = await publish(nats_url, rate, seconds)
    expected = published * clients
    deadline = time.perf_counter() + 10
    while sum(len(c.seen) for c in group) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    server_cpu = (cpu_seconds(server_pid) - cpu_server) / elapsed * 100
    client_cpu = (cpu_seconds(os.getpid()) - cpu_client) / elapsed * 100
    received = sum(len(c.seen) for c in group)
    for task in tasks:
        task.cancel()
    for sock in stalled_sockets:
        sock.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2)  # let the server notice the closed streams
    latencies = sorted(x for c in group for x in c.latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {
        "clients": clients,
        "stalled": stalled,
        "rate": rate,
        "p50": quantiles[49],
        "p99": quantiles[98],
        "deliveries_per_s": received / elapsed,
        "lost": expected - received,
        "kb_per_idle_client": (idle - before) / clients,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
    }


async def main_async(args):
    with tempfile.TemporaryDirectory() as tmp:
        nats_port, http_port = free_port(), free_port()
        nats_bin = Path(sys.executable).parent / "nats-server"
        nats_proc = subprocess.Popen(
            [str(nats_bin), "-a", "127.0.0.1", "-p", str(nats_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nats_url = f"nats://127.0.0.1:{nats_port}"
        database = f"sqlite:///{tmp}/live.db"
        if args.server == "gunicorn":
            command = [
                str(Path(sys.executable).parent / "gunicorn"),
                "--workers=1",
                "--worker-class=gthread",
                f"--threads={max(args.clients) + args.stalled + 50}",
                f"--bind=127.0.0.1:{http_port}",
                "host_example:create_app()",
            ]
        else:
            command = [sys.executable, "-c", SERVE, database, nats_url, str(http_port)]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMNI_DATABASE_URL": database,
            "OMNI_API_KEY": KEY,
            "OMNI_NATS_URL": nats_url,
            "OMNI_DASHBOARD_STREAM_MAX_CLIENTS": "5000",
            "OMNI_DASHBOARD_STREAM_QUEUE": "100000",
        }
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await wait_port(nats_port)
            await wait_port(http_port)
            served_by = worker_pid(server.pid) if args.server == "gunicorn" else server.pid
            warm = Client()  # starts the bridge, so that memory counts clients only
            warm_task = asyncio.create_task(warm.run(http_port))
            await asyncio.wait_for(warm.connected.wait(), 30)
            results = []
            for clients in args.clients:
                results.append(
                    await scenario(http_port, nats_url, served_by, clients, args.rate, args.seconds)
                )
                print(results[-1], flush=True)
            ceiling = []
            for rate in args.ceiling_rates:
                result = await scenario(
                    http_port, nats_url, served_by, args.clients[-1], rate, args.seconds
                )
                print(result, flush=True)
                ceiling.append(result)
                if result["lost"] or result["p99"] > 1000:
                    break
            if args.stalled:
                beside = await scenario(
                    http_port,
                    nats_url,
                    served_by,
                    args.clients[-1],
                    args.rate,
                    args.seconds,
                    stalled=args.stalled,
                )
                print(beside, flush=True)
                ceiling.append(beside)
            warm_task.cancel()
        finally:
            server.kill()
            nats_proc.kill()
    return results, ceiling


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,50,200")
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--ceiling-rates", default="200,400,800")
    parser.add_argument(
        "--stalled", type=int, default=20, help="stalled clients beside the largest N (0: none)"
    )
    parser.add_argument(
        "--server",
        choices=("gunicorn", "werkzeug"),
        default="gunicorn",
        help="gunicorn gthread (as deployed; pip install gunicorn) or werkzeug's dev server",
    )
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    args.ceiling_rates = [float(r) for r in args.ceiling_rates.split(",")]
    results, ceiling = asyncio.run(main_async(args))
    lines = [
        f"{args.seconds:g} s per scenario; clients and server on the same 2 cores; one server "
        f"process ({args.server}); latency from publish (NATS) to SSE line read, after 2 s "
        "of warm-up traffic.",
        "",
        "| clients | events/s | p50 latency (ms) | p99 latency (ms) | deliveries/s | lost "
        "| server RSS per idle client (KB) | server CPU | bench CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results + ceiling:
        who = f"{r['clients']} + {r['stalled']} stalled" if r["stalled"] else str(r["clients"])
        lines.append(
            f"| {who} | {r['rate']:g} | {r['p50']:.1f} | {r['p99']:.1f} "
            f"| {r['deliveries_per_s']:,.0f} | {r['lost']} | {r['kb_per_idle_client']:.0f} "
            f"| {r['server_cpu']:.0f} % | {r['client_cpu']:.0f} % |"
        )
    sustained = [r for r in ceiling + results if not r["lost"]]
    best = max(sustained, key=lambda r: r["deliveries_per_s"]) if sustained else None
    if best:
        lines += [
            "",
            f"Most deliveries per second sustained without loss: "
            f"{best['deliveries_per_s']:,.0f} ({best['clients']} clients x {best['rate']:g}/s).",
        ]
    beside = next((r for r in ceiling if r["stalled"]), None)
    alone = next((r for r in results if r["clients"] == args.clients[-1]), None)
    if beside and alone:
        lines += [
            "",
            f"Readers' p99 beside {beside['stalled']} stalled clients: {beside['p99']:.1f} ms, "
            f"against {alone['p99']:.1f} ms without them ({beside['p99'] / alone['p99']:.2f}x).",
        ]
    print("\n".join(lines))
    if args.write:
        write_section("live", "\n".join(lines))


if __name__ == "__main__":
    main()
