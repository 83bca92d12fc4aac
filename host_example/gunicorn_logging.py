"""gunicorn's logger for the reference host: access-log lines without API keys.

Named by ``logger_class`` in host_example/gunicorn.conf.py. Every atom of an access-log line
(request line, query string, referer, request headers, environ values) has the value of an
``api_key`` argument replaced, however its name is percent-encoded (``request_log.redact``),
and the ``x-api-key`` header's atoms (``{x-api-key}i``, ``{http_x_api_key}e``) are replaced
whole.
"""

from gunicorn.glogging import Logger

from .request_log import REDACTED, redact

KEY_HEADER_ATOMS = frozenset({"{x-api-key}i", "{http_x_api_key}e"})


class RedactingLogger(Logger):
    """gunicorn's Logger, redacting keys from the access log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if name in KEY_HEADER_ATOMS:
                atoms[name] = REDACTED
            elif isinstance(value, str):
                atoms[name] = redact(value)
        return atoms
