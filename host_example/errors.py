"""Omni's error envelope for every error response (the plugin's rendering of it, which its
own routes use on any host), and 503 when the database is down."""

import logging

from flask import request
from flask_smorest import Api
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import (
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
    ServiceUnavailable,
)

from omni_dashboard_plugin.api.errors import envelope

from .schemas import ErrorSchema

log = logging.getLogger(__name__)


class OmniApi(Api):
    """flask-smorest's Api, with Omni's error envelope documented and returned."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return envelope(error)


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
