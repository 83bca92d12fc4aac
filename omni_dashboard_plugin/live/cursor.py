"""Event ids: a cursor of the last sequence seen per stream, as one opaque string.

In JetStream mode the streams are JetStream streams and the sequences theirs, so an id
means the same in every server process. In buffer mode there is one stream, named after
the process's epoch, whose sequence the process counts.
"""

import re

Cursor = dict[str, int]
_PART = re.compile(r"^([A-Za-z0-9_@-]{1,64})=(\d{1,19})$")
MAX_STREAMS = 16


class BadCursor(ValueError):
    """Not an id this feed issued."""


def encode(cursor: Cursor) -> str:
    """``STREAM=SEQ,STREAM=SEQ`` in stream order."""
    return ",".join(f"{name}={seq}" for name, seq in sorted(cursor.items()))


def decode(text: str) -> Cursor:
    """Inverse of :func:`encode`; raises :class:`BadCursor`."""
    parts = text.split(",") if text else []
    if not parts or len(parts) > MAX_STREAMS:
        raise BadCursor(text)
    cursor: Cursor = {}
    for part in parts:
        match = _PART.match(part)
        if not match or match.group(1) in cursor:
            raise BadCursor(text)
        cursor[match.group(1)] = int(match.group(2))
    return cursor
