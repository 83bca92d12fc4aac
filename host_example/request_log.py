"""The example host's request log, with API keys redacted from logged URLs."""

import re

from werkzeug.serving import WSGIRequestHandler

_KEY = re.compile(r"(?i)((?:^|[?&])api_key=)[^&\s]*")


def redact(text: str) -> str:
    """``text`` with the value of every ``api_key`` query argument replaced."""
    return _KEY.sub(r"\1[REDACTED]", text)


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging request lines without API keys."""

    def log(self, type, message, *args):
        super().log(type, redact(message % args) if args else redact(message))
