"""gunicorn's logger for the reference host: access-log lines without API keys.

Named by ``logger_class`` in host_example/gunicorn.conf.py. Every atom of an access-log line
(request line, query string, referer, request headers) has the value of an ``api_key``
argument replaced, and an ``x-api-key`` header atom is replaced whole.
"""

from gunicorn.glogging import Logger

from .request_log import redact

REDACTED = "[REDACTED]"


class RedactingLogger(Logger):
    """gunicorn's Logger, redacting keys from the access log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if name == "{x-api-key}i":
                atoms[name] = REDACTED
            elif isinstance(value, str):
                atoms[name] = redact(value)
        return atoms
