"""What the WSGI server tells about a stream's socket: which one, and how its body is framed.

The writer thread may continue a response on the client socket only where it knows how the
server frames the body it began: gunicorn and werkzeug's threaded server use chunked
transfer coding for an HTTP/1.1 response without ``Content-Length``; gunicorn ends an
HTTP/1.0 response by closing. Any other server keeps the stream on its request thread.
"""

import contextlib
import socket
import struct

CHUNKED = "chunked"
CLOSE_DELIMITED = "close"


def raw_socket(environ) -> socket.socket | None:
    """The client socket the WSGI server exposes (werkzeug or gunicorn), if any."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    return sock if isinstance(sock, socket.socket) else None


def _http_version(environ) -> tuple[int, int]:
    try:
        major, minor = environ.get("SERVER_PROTOCOL", "HTTP/1.0").split("/", 1)[1].split(".")
        return int(major), int(minor)
    except (IndexError, ValueError):
        return (1, 0)


def body_framing(environ) -> str | None:
    """How the server frames this response's body: CHUNKED, CLOSE_DELIMITED, or unknown."""
    if raw_socket(environ) is None or environ.get("REQUEST_METHOD") == "HEAD":
        return None
    if "gunicorn.socket" in environ:
        return CHUNKED if _http_version(environ) >= (1, 1) else CLOSE_DELIMITED
    # werkzeug speaks HTTP/1.1 (chunked) when it serves with threads or processes.
    if environ.get("wsgi.multithread") or environ.get("wsgi.multiprocess"):
        return CHUNKED
    return None


def frame(data: bytes, framing: str) -> bytes:
    """``data`` as one chunk of a chunked body, or as it is."""
    if framing == CHUNKED and data:
        return b"%x\r\n%s\r\n" % (len(data), data)
    return data


def bound_stalls(sock: socket.socket, seconds: float) -> None:
    """Put a deadline on the client's progress on ``sock``; 0 lifts it.

    The kernel drops the connection when what it sent stays unacknowledged, or the client's
    receive window stays closed, for ``seconds`` (``TCP_USER_TIMEOUT``, Linux), however much
    the send buffer still holds: a client that stops reading is dropped once its own receive
    buffer is full, not once the server's is too. A blocking send fails after ``seconds``
    without progress as well (``SO_SNDTIMEO``). Reads are not affected, so a WebSocket's
    reader thread keeps waiting for the peer.
    """
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(seconds * 1000))


def hang_up(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways: a thread blocked on it returns with an error."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
