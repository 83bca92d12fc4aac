"""Omni's error envelope for every error response, and 503 when the database is down."""

import logging

from flask import jsonify, request
from flask_smorest import Api
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import (
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
    ServiceUnavailable,
)

from .schemas import ErrorSchema

log = logging.getLogger(__name__)

CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    414: "URI_TOO_LONG",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def _field_messages(messages) -> dict:
    """Flatten webargs' ``{location: {field: [msg]}}`` into ``{field: [msg]}``."""
    details: dict = {}
    for location, fields_ in (messages or {}).items():
        if isinstance(fields_, dict):
            details.update(fields_)
        else:
            details[location] = fields_
    return details


def error_body(code: int, message: str, details: dict | None = None) -> dict:
    """``{"error": {"code", "message", "details"?}}``."""
    error = {"code": CODES.get(code, "ERROR"), "message": message}
    if details:
        error["details"] = details
    return {"error": error}


class OmniApi(Api):
    """flask-smorest's Api, with Omni's error envelope documented and returned."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        data = getattr(error, "data", None) or {}
        details = _field_messages(data.get("messages") or data.get("errors"))
        if error.code in (400, 422) and details:
            message = "Invalid request: " + ", ".join(sorted(details))
        else:
            message = data.get("message") or error.description or error.name
        if error.code >= 500 and error.code != 503:
            message = "Internal server error"
        # werkzeug's own headers (Allow on 405, ...) except its HTML content type
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        return jsonify(error_body(error.code, message, details)), error.code, headers


def register_database_errors(app) -> None:
    """A database that is down becomes 503 with the envelope, never a stack trace."""

    def unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].handle_http_exception(
            ServiceUnavailable("Database unavailable")
        )

    for kind in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.register_error_handler(kind, unavailable)


def register_request_limits(app) -> None:
    """414 for a request target (path and query, as sent) longer than OMNI_MAX_URL_LENGTH,
    431 for headers larger than OMNI_MAX_HEADER_BYTES, both in the error envelope; register
    it before the key check, so that it runs first. (A server in front refuses what exceeds
    its own limits itself: host_example/gunicorn.conf.py keeps gunicorn's above these.)"""

    @app.before_request
    def _limits():
        environ = request.environ
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
        if len(target) > app.config["OMNI_MAX_URL_LENGTH"]:
            raise RequestURITooLarge()
        size = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if size > app.config["OMNI_MAX_HEADER_BYTES"]:
            raise RequestHeaderFieldsTooLarge()
