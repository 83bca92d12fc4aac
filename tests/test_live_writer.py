"""The SSE writer thread on real sockets: partial writes, a stalled reader, overflow."""

import select
import socket
import threading

from omni_dashboard_plugin.live.hub import Filters, Hub
from omni_dashboard_plugin.live.messages import parse
from omni_dashboard_plugin.live.sockets import CHUNKED
from omni_dashboard_plugin.live.writer import SocketWriter
from omni_dashboard_plugin.metrics.process import ProcessMetrics

from .live_support import dechunk, omni_message, parse_events, sample
from .waiting import CEILING, pace, wait_until

OVERFLOWS = "omni_dashboard_stream_overflows_total"


def tiny_pair():
    server_side, client_side = socket.socketpair()
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return server_side, client_side


def readable(sock) -> bool:
    """Whether ``sock`` has bytes to read (without reading them)."""
    return bool(select.select([sock], [], [], 0)[0])


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


def serving(sock, heartbeat=30.0, queue_size=50, send_timeout=30.0):
    """A hub and writer serving one chunked subscription on ``sock``, in a thread.

    ``outcome`` gets what :meth:`SocketWriter.serve` returned.
    """
    hub = Hub(replay_size=10, queue_size=queue_size, max_clients=10, meter=ProcessMetrics(False))
    writer = SocketWriter(hub, heartbeat=heartbeat, send_timeout=send_timeout)
    start = hub.subscribe(Filters(), None)
    outcome = []

    def serve():
        outcome.append(writer.serve(sock, start, CHUNKED, 0))

    served = threading.Thread(target=serve, daemon=True)
    served.start()
    return hub, writer, start, served, outcome


def event(n):
    message = omni_message("message.received", n=n, text="x" * 400)
    return parse("message.received.slack.inst-1", message)


def test_a_stalled_socket_overflows_and_is_hung_up_on_at_once():
    server_side, client_side = tiny_pair()
    hub, writer, start, served, outcome = serving(server_side)
    hub.publish(event(0))
    wait_until(lambda: readable(client_side), "the writer to send the first event")
    for n in range(1, 2000):  # far more than the socket buffers and the queue hold
        hub.publish(event(n))
        pace(0.0005, "the writer fills the socket before the queue fills")
        if start.subscription.closed:
            break
    assert start.subscription.closed and sample(hub.meter, OVERFLOWS) == 1
    served.join(CEILING)  # hung up on without the client reading anything
    assert not served.is_alive() and outcome == [False]
    body, cut = dechunk(read_all(client_side).encode())
    events, _ = parse_events(body)
    received = [e for e in events if e.get("event") == "event.received"]
    assert [e["data"]["id"] for e in received] == [
        f"message.received-inst-1-{n}" for n in range(len(received))
    ]
    assert 0 < len(received) < 2000  # what the socket buffers took, in order
    assert cut or not any(e.get("event") == "overflow" for e in events)
    writer.close()


def test_a_socket_that_takes_nothing_for_the_send_timeout_is_hung_up_on():
    server_side, unread = tiny_pair()  # the client never reads
    hub, writer, _, served, outcome = serving(server_side, queue_size=100_000, send_timeout=0.5)
    hub.publish(event(0))
    wait_until(lambda: readable(unread), "the writer to send the first event")
    for n in range(1, 300):  # fills the socket; the queue never overflows
        hub.publish(event(n))
    served.join(CEILING)
    assert not served.is_alive() and outcome == [False]
    assert sample(hub.meter, OVERFLOWS) == 0 and hub.clients == 0
    writer.close()


def test_frames_are_chunks_and_a_stream_that_ends_hands_the_socket_back():
    server_side, client_side = socket.socketpair()
    hub = Hub(replay_size=10, queue_size=3, max_clients=10)
    writer = SocketWriter(hub, heartbeat=30, send_timeout=30)
    start = hub.subscribe(Filters(), None)
    for n in range(4):  # the fourth overflows the queue of 3 before the stream runs
        hub.publish(event(n))
    assert writer.serve(server_side, start, CHUNKED, 0) is True
    assert server_side.gettimeout() is None  # blocking again, for the server's last chunk
    server_side.sendall(b"0\r\n\r\n")
    body, cut = dechunk(read_all(client_side, until_closed=False, timeout=2).encode())
    events, rest = parse_events(body)
    assert not cut and rest == ""
    assert [e["event"] for e in events] == ["event.received"] * 3 + ["overflow"]
    writer.close()


def test_a_client_that_leaves_is_unsubscribed():
    server_side, client_side = socket.socketpair()
    hub, writer, _, served, outcome = serving(server_side)
    wait_until(lambda: server_side.gettimeout() == 0.0, "the writer to take the socket")
    assert hub.clients == 1
    client_side.close()
    served.join(CEILING)
    assert not served.is_alive() and hub.clients == 0 and outcome == [False]
    writer.close()


def test_idle_streams_get_heartbeats():
    server_side, client_side = socket.socketpair()
    _, writer, _, _, _ = serving(server_side, heartbeat=0.2)
    client_side.settimeout(5)
    seen = b""
    while seen.count(b": heartbeat") < 2:
        seen += client_side.recv(4096)
    assert seen.startswith(b"%x\r\n: heartbeat\n\r\n" % len(b": heartbeat\n"))
    writer.close()


def tiny_tcp_pair():
    """A loopback TCP connection with small buffers: (server side, client side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_side = socket.socket()
        client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client_side.connect(listener.getsockname())
        server_side, _ = listener.accept()
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return server_side, client_side


def test_a_client_that_trickles_is_held_to_the_deadline_on_its_progress():
    """A client that takes a little now and then never catches up: the deadline runs from
    when bytes first had to wait, not from its last partial read (which would never end
    this stream)."""
    server_side, client_side = tiny_tcp_pair()
    hub, writer, _, served, outcome = serving(server_side, queue_size=100_000, send_timeout=1.0)
    for n in range(300):  # 120 KB: a dozen seconds at the rate this client reads
        hub.publish(event(n))
    stop = threading.Event()

    def trickle():
        client_side.settimeout(0.1)
        while not stop.is_set():
            try:
                if not client_side.recv(1000):
                    return
            except TimeoutError:
                pass
            stop.wait(0.1)  # a slow client: 10 KB/s

    reader = threading.Thread(target=trickle, daemon=True)
    reader.start()
    served.join(20)  # a ceiling for hangs only
    stop.set()
    assert not served.is_alive() and outcome == [False]
    assert sample(hub.meter, OVERFLOWS) == 0 and hub.clients == 0
    writer.close()
