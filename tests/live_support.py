"""Test support for the live feed: a real nats-server, an SSE reader, a NATS publisher."""

import asyncio
import contextlib
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats

from .waiting import wait_until

NATS_BINARY = Path(sys.executable).parent / "nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens(port: int) -> bool:
    """Whether something accepts connections on ``port`` on loopback."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int) -> None:
    wait_until(lambda: listens(port), f"something to listen on port {port}")


def hub_sequenced(hub) -> int:
    """How many events (and gaps) the hub has numbered: the sum of its cursor, which grows by
    one an event in buffer and JetStream mode alike."""
    return sum(hub.cursor().values())


def wait_for_hub(hub, count: int, since: int) -> None:
    """Wait until ``hub`` has taken ``count`` more events than ``since`` (a
    :func:`hub_sequenced` value): they are in its buffer or its JetStream cursor."""
    wait_until(lambda: hub_sequenced(hub) >= since + count, f"the hub to take {count} events")


class NatsServer:
    """A nats-server with JetStream on a free port, which a test can stop and restart.

    It writes each stored message to disk before acknowledging it (``sync_interval:
    always``): a test kills it, and what the stream acknowledged must outlive that, as it
    does on a replicated production stream."""

    def __init__(self, store: Path):
        self.port = free_port()
        self.store = store
        self.process = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.store.with_name(f"{self.store.name}.conf")
        config.write_text(
            f"jetstream {{ store_dir: {json.dumps(str(self.store))}, sync_interval: always }}\n"
        )
        command = [str(NATS_BINARY), "-a", "127.0.0.1", "-p", str(self.port), "-c", str(config)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def omni_message(event_type, channel="slack", instance="inst-1", n=0, **payload):
    return {
        "id": f"{event_type}-{instance}-{n}",
        "type": event_type,
        "payload": payload,
        "timestamp": 1_770_000_000_000 + n,
        "metadata": {"correlationId": f"c{n}", "instanceId": instance, "channelType": channel},
    }


def subject_of(message) -> str:
    meta = message["metadata"]
    return f"{message['type']}.{meta['channelType']}.{meta['instanceId']}"


def publish(url: str, messages, raw=(), pace: float = 0.0) -> None:
    """Publish Omni messages (and raw (subject, bytes) pairs) to NATS, flushed.

    ``pace`` seconds between messages (0: as fast as possible).
    """

    async def run():
        client = await nats.connect(url)
        for message in messages:
            await client.publish(subject_of(message), json.dumps(message).encode())
            if pace:
                await client.flush()
                await asyncio.sleep(pace)
        for subject, data in raw:
            await client.publish(subject, data)
        await client.flush()
        await client.close()

    outside_any_loop(run)


def outside_any_loop(coroutine_function):
    """Run ``coroutine_function()`` to completion in a thread of its own (the caller's may
    run an event loop already, e.g. Playwright's); its result."""
    result, errors = [], []

    def target():
        try:
            result.append(asyncio.run(coroutine_function()))
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def add_streams(url: str) -> None:
    """Omni's MESSAGE and INSTANCE JetStream streams."""

    async def run():
        client = await nats.connect(url)
        js = client.jetstream()
        await js.add_stream(name="MESSAGE", subjects=["message.>"])
        await js.add_stream(name="INSTANCE", subjects=["instance.>"])
        await client.close()

    asyncio.run(run())


def parse_events(text: str):
    """Complete SSE events of ``text`` as dicts, and the unparsed rest.

    A comment line (``: heartbeat``) is reported at once as ``{"comment": ...}``; a block
    of fields ends at a blank line, and one without fields dispatches nothing.
    """
    events, event = [], {}
    while "\n" in text:
        line, text = text.split("\n", 1)
        if line.startswith(":"):
            events.append({"comment": line[1:].strip()})
        elif line:
            name, _, value = line.partition(": ")
            event[name] = value
        elif event:
            if "data" in event:
                event["data"] = json.loads(event["data"])
            events.append(event)
            event = {}
    rest = "".join(f"{name}: {value}\n" for name, value in event.items()) + text
    return events, rest


def dechunk(raw: bytes) -> tuple[str, bool]:
    """The body carried by a chunked byte stream, and whether it was cut inside a chunk."""
    body = b""
    while raw:
        size_line, sep, rest = raw.partition(b"\r\n")
        if not sep:
            return body.decode(), True
        size = int(size_line, 16)
        if len(rest) < size + 2:
            return body.decode(), True
        assert rest[size : size + 2] == b"\r\n", "a chunk must end with CRLF"
        body, raw = body + rest[:size], rest[size + 2 :]
    return body.decode(), False


class SseReader:
    """Reads an SSE body (an iterator of chunks) in a thread into a queue of events."""

    def __init__(self, chunks):
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(chunks,), daemon=True)
        self.thread.start()

    def _run(self, chunks):
        import http.client

        rest = ""
        try:
            for chunk in chunks:
                rest += chunk.decode() if isinstance(chunk, bytes) else chunk
                events, rest = parse_events(rest)
                for event in events:
                    event["at"] = time.monotonic()
                    self.events.put(event)
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the test hung up
        finally:
            self.events.put({"closed": True})

    def next(self, timeout=10.0, skip_comments=True):
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if skip_comments and "event" not in event and not event.get("closed"):
                continue  # heartbeat comments and the retry hint
            return event

    def take(self, count, name=None, timeout=10.0):
        """The next ``count`` events (named ``name`` when given), skipping others."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event.get("closed"):
                raise AssertionError(f"stream closed after {got}")
            if name is None or event.get("event") == name:
                got.append(event)
        return got


class HangUp:
    """Closes a client's socket for real (http.client keeps it open for the response)."""

    def __init__(self, sock):
        self.sock = sock

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def open_sse(port: int, path: str, key=None, headers=None):
    """Open an SSE request to ``port`` on loopback: (status, SseReader or error JSON, a
    HangUp that closes the connection for real)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    all_headers = {"Accept": "text/event-stream", **(headers or {})}
    if key:
        all_headers["x-api-key"] = key
    conn.connect()
    hangup = HangUp(conn.sock)
    conn.request("GET", path, headers=all_headers)
    response = conn.getresponse()
    if response.status != 200:
        return response.status, json.loads(response.read() or b"null"), hangup
    return 200, SseReader(iter(lambda: response.read1(65536), b"")), hangup


class Served:
    """An app served over real HTTP by werkzeug's threaded server, in a thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stream(self, path, key=None, headers=None):
        """Open an SSE request: (status, SseReader or error JSON, connection)."""
        return open_sse(self.port, path, key, headers)

    def close(self):
        self.server.shutdown()


def sample(meter, name: str, **labels) -> float:
    """A sample of the plugin's per-process families (a ``ProcessMetrics``), read as a
    scrape reads it: through a registry."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(meter)
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
