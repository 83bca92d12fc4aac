"""The live feed read by the clients people use, each in its own thread or process.

Every client puts ``(arrival time, event name, data)`` on one queue, with ``data`` parsed as
JSON the way that client's users do; a client that cannot parse an event fails the test.
"""

import contextlib
import json
import queue
import shutil
import subprocess
import threading
import time

import pytest

from .conftest import IN_CI
from .node_support import node_packages


class ClientRun:
    """A running client: its events, and how to stop it."""

    def __init__(self):
        self.events: queue.Queue = queue.Queue()
        self.errors: list[BaseException] = []
        self.poll = None  # for clients read from the test's thread (a browser page)
        self._closers: list = []

    def put(self, name, data) -> None:
        self.events.put((time.monotonic(), name, data))

    def on_close(self, closer) -> None:
        self._closers.append(closer)

    def wait_for(self, predicate, timeout: float):
        """The arrival time and data of the first event that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout} s; errors: {self.errors}")
            if self.poll is not None:
                self.poll()
            try:
                arrived, name, data = self.events.get(timeout=min(left, 0.02))
            except queue.Empty:
                continue
            if predicate(name, data):
                return arrived, name, data

    def close(self) -> None:
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()


def _in_thread(run: ClientRun, target) -> ClientRun:
    def guarded():
        try:
            target()
        except Exception as exc:  # reported through run.errors
            run.errors.append(exc)

    threading.Thread(target=guarded, daemon=True).start()
    return run


def _streamed(run: ClientRun, url: str, key: str):
    """A streamed ``requests`` GET of the feed, closed with the run."""
    import requests

    response = requests.get(
        url, headers={"x-api-key": key, "Accept": "text/event-stream"}, stream=True, timeout=30
    )
    run.on_close(response.close)
    return response


def requests_client(url: str, key: str) -> ClientRun:
    """``requests`` with ``iter_lines()`` and its default chunk size (512)."""
    run = ClientRun()
    response = _streamed(run, url, key)

    def read():
        name = "message"
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                run.put(name, json.loads(line[5:]))
            elif not line:
                name = "message"

    return _in_thread(run, read)


def httpx_sse_client(url: str, key: str) -> ClientRun:
    """``httpx-sse``: every event's data parsed as JSON."""
    import httpx
    from httpx_sse import connect_sse

    run = ClientRun()
    client = httpx.Client(timeout=httpx.Timeout(30, read=None))
    run.on_close(client.close)

    def read():
        with connect_sse(client, "GET", url, headers={"x-api-key": key}) as source:
            for sse in source.iter_sse():
                run.put(sse.event, json.loads(sse.data))

    return _in_thread(run, read)


def sseclient_py_client(url: str, key: str) -> ClientRun:
    """``sseclient-py`` over a streamed ``requests`` response."""
    import sseclient

    run = ClientRun()
    response = _streamed(run, url, key)

    def read():
        for event in sseclient.SSEClient(response).events():
            run.put(event.event, json.loads(event.data))

    return _in_thread(run, read)


def _lines_of(run: ClientRun, process: subprocess.Popen, parse) -> ClientRun:
    run.on_close(process.kill)

    def read():
        for line in process.stdout:
            parse(line.rstrip("\n"))

    return _in_thread(run, read)


def curl_client(url: str, key: str) -> ClientRun:
    """``curl -N`` (no buffering), its output parsed line by line."""
    binary = shutil.which("curl")
    if binary is None:
        pytest.fail("curl is not installed") if IN_CI else pytest.skip("curl is not installed")
    run = ClientRun()
    process = subprocess.Popen(
        [binary, "-sN", "-H", f"x-api-key: {key}", url], stdout=subprocess.PIPE, text=True
    )
    state = {"name": "message"}

    def parse(line):
        if line.startswith("event:"):
            state["name"] = line[6:].strip()
        elif line.startswith("data:"):
            run.put(state["name"], json.loads(line[5:]))

    return _lines_of(run, process, parse)


def node_eventsource_client(url: str, key: str) -> ClientRun:
    """The npm ``eventsource`` package (tests/js), in Node.js."""
    js_dir = node_packages()
    run = ClientRun()
    process = subprocess.Popen(
        [shutil.which("node"), str(js_dir / "sse_client.mjs"), url, key],
        stdout=subprocess.PIPE,
        text=True,
    )

    def parse(line):
        frame = json.loads(line)
        run.put(frame["event"], frame["data"])

    return _lines_of(run, process, parse)


def websockets_client(url: str, key: str) -> ClientRun:
    """The ``websockets`` package (sync client) on the WebSocket twin."""
    from websockets.sync.client import connect

    run = ClientRun()
    ws_url = url.replace("http://", "ws://").replace("/events/stream", "/events/ws")

    def read():
        with connect(ws_url, additional_headers={"x-api-key": key}, open_timeout=10) as socket:
            run.on_close(socket.close)
            for message in socket:
                frame = json.loads(message)
                run.put(frame["event"], frame["data"])

    return _in_thread(run, read)


def chromium_client(browser, base: str, path: str, key: str) -> ClientRun:
    """A browser's own ``EventSource`` on a page of the same origin (key in ``api_key``)."""
    run = ClientRun()
    page = browser.new_page()
    page.goto(f"{base}/api/v2/health")
    page.evaluate(
        """([path, key]) => {
            window.feed = [];
            const joint = path.includes("?") ? "&" : "?";
            const source = new EventSource(`${path}${joint}api_key=${key}`);
            for (const name of ["connected", "event.received", "status", "reset", "overflow"]) {
                source.addEventListener(name, (e) => window.feed.push([name, JSON.parse(e.data)]));
            }
            window.source = source;
        }""",
        [path, key],
    )
    run.on_close(page.close)
    seen = [0]

    def poll():  # the page's new events onto the queue
        for name, data in page.evaluate("window.feed")[seen[0] :]:
            run.put(name, data)
            seen[0] += 1

    run.poll = poll
    return run


SSE_CLIENTS = {
    "requests": requests_client,
    "httpx-sse": httpx_sse_client,
    "sseclient-py": sseclient_py_client,
    "curl": curl_client,
    "npm-eventsource": node_eventsource_client,
    "websockets": websockets_client,
}
