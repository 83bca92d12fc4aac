"""Omni's API-key rule: every /api/v2 route but /health needs the key, whatever the method.

The key comes in the ``x-api-key`` header or the ``api_key`` query argument and is
compared in constant time. ``OPTIONS`` needs it too: the host serves no CORS, so a
preflight has nothing to answer, and without the key ``OPTIONS`` would tell anyone which
routes exist and what they allow (docs/reference-host.md).
"""

import hmac

from flask import request
from flask_smorest import abort

OPEN_PATHS = frozenset({"/api/v2/health"})
PROTECTED_PREFIX = "/api/v2/"

SECURITY_SCHEMES = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
}
SECURITY = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]


def presented_key() -> str | None:
    """The key the request carries, from the header first, then the query."""
    return request.headers.get("x-api-key") or request.args.get("api_key")


def key_is_valid(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the presented key with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def install(app) -> None:
    """Refuse requests to protected routes without the right key (401, Omni envelope)."""

    @app.before_request
    def _require_key():
        path = request.path
        if not path.startswith(PROTECTED_PREFIX) or path in OPEN_PATHS:
            return None
        if not key_is_valid(app.config["OMNI_API_KEY"], presented_key()):
            abort(401, message="Missing or invalid API key")
        return None
