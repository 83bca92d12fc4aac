"""The example host's request log, with API keys redacted from logged URLs.

werkzeug percent-decodes query names before it looks for ``api_key``, so ``api%5Fkey=KEY``
is a key like ``api_key=KEY``; redaction therefore matches every character of the name, and
the ``=`` and separator around it, in any percent-encoding (``%5F``, ``%5f``, ``%255F``,
...) and any case, so that a key nested in an encoded URL (a Referer's ``?next=`` argument,
say) is caught too. The value is replaced up to the next raw ``&`` or white space.
"""

import re

from werkzeug.serving import WSGIRequestHandler

REDACTED = "[REDACTED]"


def _spelled(char: str) -> str:
    """A pattern for ``char`` as it is, or percent-encoded once or more (``%5F``, ``%255F``)."""
    return f"(?:{re.escape(char)}|%(?:25)*{ord(char):02x})"


_SEPARATOR = "|".join(_spelled(char) for char in "?&;")
_KEY = re.compile(
    rf"(?i)((?:^|\s|{_SEPARATOR}){''.join(_spelled(c) for c in 'api_key')}{_spelled('=')})"
    r"[^&\s]*"
)


def redact(text: str) -> str:
    """``text`` with the value of every ``api_key`` argument replaced, however encoded."""
    return _KEY.sub(rf"\1{REDACTED}", text)


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging request lines without API keys."""

    def log(self, type, message, *args):
        super().log(type, redact(message % args) if args else redact(message))
