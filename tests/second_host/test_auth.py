"""A host with its own authentication (bearer tokens, docs/host-integration.md) guards
every route the plugin registers with one app-level ``before_request``."""

import pytest

from .app import create_app
from .data import NOW
from .hosts import KEY, read

PLUGIN_BLUEPRINTS = {"dashboard", "dashboard-metrics", "events-stream", "events-ws"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('auth') / 'team.db'}"
    built = create_app(url, token=KEY, clock=lambda: NOW, migrate=True)
    yield built
    built.extensions["omni_dashboard"].live.stop()
    built.extensions["omni_dashboard"].engine.dispose()


def _plugin_paths(app) -> set[str]:
    return {
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in PLUGIN_BLUEPRINTS
    }


def test_the_plugin_registers_the_documented_routes(app):
    assert _plugin_paths(app) == {
        "/api/v2/dashboard",
        "/api/v2/dashboard/metrics",
        "/api/v2/events/stream",
        "/api/v2/events/ws",
    }


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"x-api-key": KEY}]
)
def test_every_plugin_route_refuses_a_caller_without_the_token(app, headers):
    client = app.test_client()
    for path in sorted(_plugin_paths(app)):
        status, _, body = read(client, path, headers)
        assert (status, body) == (401, b'{"message":"unauthorized"}\n'), path


def test_with_the_token_every_plugin_route_answers(app):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {KEY}"}
    for path in ("/api/v2/dashboard", "/api/v2/dashboard/metrics", "/api/v2/events/stream"):
        assert read(client, path, headers)[0] == 200, path


def test_only_the_streams_take_the_token_as_an_argument(app):
    """EventSource sends no header: the stream routes take ``access_token``; no other
    route does."""
    client = app.test_client()
    assert read(client, f"/api/v2/events/stream?access_token={KEY}", {})[0] == 200
    assert read(client, "/api/v2/events/stream?access_token=wrong", {})[0] == 401
    for path in ("/api/v2/dashboard", "/api/v2/dashboard/metrics", "/event-ops/metrics"):
        assert read(client, f"{path}?access_token={KEY}", {})[0] == 401, path
