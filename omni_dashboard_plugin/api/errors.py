"""Omni's error envelope on the plugin's own routes, whatever the host's error handlers.

Each of the plugin's blueprints gets a handler per HTTP error code, which Flask prefers to
the app's for a request routed to that blueprint; an app-level ``before_request`` answers
what routing refuses before any blueprint is known (405 on a plugin route, 404 beneath
one). The host's handlers for its own routes are left as they are.
"""

from flask import jsonify, request
from werkzeug.exceptions import HTTPException, default_exceptions

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


def _details(messages) -> dict:
    """webargs' ``{location: {field: [message]}}`` as ``{field: [message]}``."""
    details: dict = {}
    for location, found in (messages or {}).items():
        if isinstance(found, dict):
            details.update(found)
        else:
            details[location] = found
    return details


def envelope(error: HTTPException):
    """``{"error": {"code", "message", "details"?}}`` for ``error``, with its headers
    (``Allow`` on 405, ...) and flask-smorest's ``abort(..., headers=)``; a 5xx other than
    503 says no more than "Internal server error"."""
    data = getattr(error, "data", None) or {}
    code = error.code or 500
    details = _details(data.get("messages") or data.get("errors"))
    if code in (400, 422) and details:
        message = "Invalid request: " + ", ".join(sorted(details))
    else:
        message = data.get("message") or error.description or error.name
    if code >= 500 and code != 503:
        message = "Internal server error"
    body: dict[str, object] = {"code": CODES.get(code, "ERROR"), "message": message}
    if details:
        body["details"] = details
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return jsonify({"error": body}), code, headers


def answer_in_envelope(blueprint) -> None:
    """Every HTTP error of ``blueprint``'s requests (its views' and the app's
    ``before_request`` functions' alike), and an exception no handler of the app takes
    (Flask's 500), answered with :func:`envelope`. Call it before registering it."""
    blueprint.register_error_handler(HTTPException, envelope)
    for code in default_exceptions:  # a host's handler of one code would come first
        blueprint.register_error_handler(code, envelope)


def answer_routing_errors(app, blueprints: set[str]) -> None:
    """405 on a route of ``blueprints``, and 404 beneath one of their paths, with
    :func:`envelope` (routing fails before a request has a blueprint)."""
    paths = tuple(
        rule.rule.rstrip("/") + "/"
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in blueprints
    )

    def theirs(error) -> bool:
        if error.code == 404:
            return request.path.startswith(paths)
        if error.code != 405 or not error.valid_methods:
            return False
        adapter = app.create_url_adapter(request)
        try:  # the rule the path matched, asked with a method it allows
            endpoint, _ = adapter.match(method=next(iter(error.valid_methods)))
        except HTTPException:  # a redirect (a slash): not one of the plugin's plain paths
            return False
        return endpoint.split(".")[0] in blueprints

    @app.before_request
    def _plugin_routing_errors():
        error = request.routing_exception
        if isinstance(error, HTTPException) and theirs(error):
            return envelope(error)
        return None
