"""The SSE writer thread on real sockets: partial writes, a stalled reader, overflow."""

import socket
import threading
import time

from omni_dashboard_plugin.live.hub import Filters, Hub
from omni_dashboard_plugin.live.messages import parse
from omni_dashboard_plugin.live.writer import SocketWriter

from .live_support import omni_message, parse_events


def tiny_pair():
    server_side, client_side = socket.socketpair()
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server_side, client_side


def read_all(sock, until_closed=True, timeout=10.0):
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        if not until_closed:
            break
    return b"".join(chunks).decode()


def serving(sock, heartbeat=30.0, queue_size=50):
    """A hub and writer serving one subscription on ``sock``, in a thread."""
    hub = Hub(replay_size=10, queue_size=queue_size, max_clients=10)
    writer = SocketWriter(hub, heartbeat=heartbeat)
    start = hub.subscribe(Filters(), None)
    served = threading.Thread(target=writer.serve, args=(sock, start, "", 0), daemon=True)
    served.start()
    return hub, writer, start, served


def event(n):
    message = omni_message("message.received", n=n, text="x" * 400)
    return parse("message.received.slack.inst-1", message)


def test_a_stalled_socket_keeps_events_queued_then_overflows_and_closes():
    server_side, client_side = tiny_pair()
    hub, writer, start, served = serving(server_side)
    time.sleep(0.1)
    for n in range(2000):  # far more than the socket buffers and the queue hold
        hub.publish(event(n))
        time.sleep(0.0005)  # let the writer fill the socket before the queue fills
        if start.subscription.closed:
            break
    assert start.subscription.closed and hub.counters["overflowed"] == 1
    text = read_all(client_side)
    served.join(5)
    assert not served.is_alive()
    head, _, body = text.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK") and "text/event-stream" in head
    events, rest = parse_events(body)
    assert rest == ""
    received = [e for e in events if e.get("event") == "event.received"]
    assert [e["data"]["id"] for e in received] == [
        f"message.received-inst-1-{n}" for n in range(len(received))
    ]
    assert 50 < len(received) < 2000  # the socket buffers, then the queue of 50, then overflow
    assert events[-1]["event"] == "overflow" and events[-1]["id"] == received[-1]["id"]
    writer.close()


def test_a_client_that_leaves_is_unsubscribed():
    server_side, client_side = socket.socketpair()
    hub, writer, _, served = serving(server_side)
    time.sleep(0.1)
    assert hub.clients == 1
    client_side.close()
    served.join(5)
    assert not served.is_alive() and hub.clients == 0
    writer.close()


def test_idle_streams_get_heartbeats():
    server_side, client_side = socket.socketpair()
    _, writer, _, _ = serving(server_side, heartbeat=0.2)
    client_side.settimeout(5)
    seen = b""
    while seen.count(b": heartbeat") < 2:
        seen += client_side.recv(4096)
    writer.close()
