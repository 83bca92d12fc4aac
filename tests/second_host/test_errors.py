"""The plugin's routes answer errors with Omni's envelope on any host: one with
flask-smorest's own error bodies (the second host), one with handlers of its own for every
code; the host's own routes keep the host's answers, byte for byte."""

import json
from dataclasses import replace

import pytest
from flask import jsonify
from werkzeug.exceptions import HTTPException

from omni_dashboard_plugin.host import make_plugin_manager

from .app import create_app
from .data import NOW
from .hosts import KEY

# Slow: the second host's apps and databases, built for each case.
pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {KEY}"}
# (method, path): the plugin's route or a path beneath one, the code and Omni's envelope.
PLUGIN_ERRORS = [
    ("POST", "/api/v2/dashboard", 405, "METHOD_NOT_ALLOWED", None),
    ("DELETE", "/api/v2/dashboard/metrics", 405, "METHOD_NOT_ALLOWED", None),
    ("PUT", "/api/v2/events/stream", 405, "METHOD_NOT_ALLOWED", None),
    ("GET", "/api/v2/dashboard/nothing-here", 404, "NOT_FOUND", None),
    ("GET", "/api/v2/events/stream/x", 404, "NOT_FOUND", None),
    ("GET", "/api/v2/dashboard?instanceId=zz", 422, "VALIDATION_ERROR", "instanceId"),
    ("GET", "/api/v2/dashboard?compare=yesterday", 422, "VALIDATION_ERROR", "compare"),
    ("GET", "/api/v2/events/stream?types=", 422, "VALIDATION_ERROR", "types"),
    ("GET", "/api/v2/events/ws?channel=", 422, "VALIDATION_ERROR", "channel"),
]
# The host's own: what it answers with or without the plugin.
HOST_ERRORS = [
    ("GET", "/no-such-route"),
    ("GET", "/api/v2/dashboardx"),
    ("GET", "/api/v2/events/nothing"),
    ("POST", "/event-ops/metrics"),
    ("GET", "/events/analytics?since=not-a-date"),
]


def _own_handlers(app) -> None:
    """A host with an error handler of its own for each code, and one for the rest."""

    def mine(error):
        code = getattr(error, "code", 500)
        return jsonify(teamError=code), code

    for code in (404, 405, 422, 500):
        app.register_error_handler(code, mine)
    app.register_error_handler(HTTPException, mine)


@pytest.fixture(params=["flask-smorest's", "its own"])
def hosts(request, tmp_path):
    """The second host, with its plugin and without, handlers as the param says."""
    url = f"sqlite:///{tmp_path / 'team.db'}"
    built = []
    for bare in (False, True):
        manager = make_plugin_manager(load_entrypoints=False) if bare else None
        app = create_app(url, token=KEY, clock=lambda: NOW, migrate=True, plugin_manager=manager)
        if request.param == "its own":
            _own_handlers(app)
        built.append(app)
    yield built
    for app in built:
        app.extensions["omni_dashboard"].live.stop()
        app.extensions["omni_dashboard"].engine.dispose()


def _ask(app, method, path):
    response = app.test_client().open(path, method=method, headers=HEADERS)
    return response.status_code, response.headers, response.get_data()


@pytest.mark.parametrize(("method", "path", "code", "name", "field"), PLUGIN_ERRORS)
def test_the_plugins_routes_answer_in_omnis_envelope(hosts, method, path, code, name, field):
    status, headers, body = _ask(hosts[0], method, path)
    assert (status, headers["Content-Type"]) == (code, "application/json"), body
    error = json.loads(body)["error"]
    assert error["code"] == name and error["message"]
    if field is None:
        assert "details" not in error
    else:
        assert list(error["details"]) == [field]
        assert error["message"] == f"Invalid request: {field}"
    if code == 405:
        assert "GET" in headers["Allow"]


def test_an_unhandled_exception_is_a_500_envelope_without_a_trace(hosts, monkeypatch):
    dashboard = hosts[0].extensions["omni_dashboard"]

    def broken(ctx):
        raise RuntimeError("secret detail of a bug")

    enabled = dashboard.registry.enabled
    part = replace(enabled["rates"].dashboard, compute=broken)
    monkeypatch.setitem(enabled, "rates", replace(enabled["rates"], dashboard=part))
    status, _, body = _ask(hosts[0], "GET", "/api/v2/dashboard")
    assert status == 500
    assert body == b'{"error":{"code":"INTERNAL_ERROR","message":"Internal server error"}}\n'


@pytest.mark.parametrize(("method", "path"), HOST_ERRORS)
def test_the_hosts_own_errors_are_its_own(hosts, method, path):
    """The host's routes, and paths not beneath the plugin's, answer as the bare host."""
    with_plugin, bare = hosts
    ours, theirs = _ask(with_plugin, method, path), _ask(bare, method, path)
    assert ours[0] == theirs[0] >= 400
    assert ours[2] == theirs[2] and b'"error"' not in ours[2]
