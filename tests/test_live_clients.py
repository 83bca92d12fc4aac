"""The live feed with the clients people use, under werkzeug and the documented gunicorn.

Each client must get ``connected`` and a published event, with every event's data parsed as
JSON by that client (heartbeats included: the server sends them every second). How soon they
arrive is measured by bench/deadlines.py (docs/performance.md), not asserted here.
"""

import itertools

import pytest

from .client_support import SSE_CLIENTS, chromium_client
from .conftest import API_KEY, build_app
from .deploy_support import Gunicorn, Nginx, nginx_binary
from .live_support import Served, omni_message, publish
from .node_support import node_packages
from .waiting import CEILING, pace

pytestmark = pytest.mark.slow  # nats-server, gunicorn, nginx, Chromium and Node clients

STREAM = "/api/v2/events/stream"
numbers = itertools.count()


@pytest.fixture(scope="module")
def nats(module_nats):
    return module_nats


def feed_settings(tmp_path, nats):
    return {
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'feed.db'}",
        "OMNI_API_KEY": API_KEY,
        "OMNI_NATS_URL": nats.url,
        "OMNI_DASHBOARD_STREAM_HEARTBEAT": 1,
    }


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request, nats, tmp_path_factory):
    """The reference host with the live feed on NATS: its base URL."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    settings = feed_settings(tmp_path, nats)
    if request.param == "werkzeug":
        app = build_app(settings.pop("OMNI_DATABASE_URL"), **settings)
        served = Served(app)
        yield f"http://127.0.0.1:{served.port}"
        app.extensions["omni_dashboard"].live.stop()
        served.close()
    else:
        gunicorn = Gunicorn(tmp_path, settings).start()
        yield gunicorn.base
        gunicorn.stop()


def connected_then_event(run, nats, label) -> None:
    """``connected``; a heartbeat; then one event."""
    try:
        _, _, data = run.wait_for(lambda name, _: name == "connected", CEILING)
        assert data["mode"] == "buffer" and data["natsConnected"] is True
        pace(1.3, "a heartbeat comment (one a second) goes through the client's parser")
        message = omni_message("message.received", instance=label, n=next(numbers))
        publish(nats.url, [message])
        _, _, data = run.wait_for(
            lambda name, data: name == "event.received" and data["id"] == message["id"], CEILING
        )
        assert data["instanceId"] == label and data["direction"] == "inbound"
        assert not run.errors, run.errors
    finally:
        run.close()


@pytest.mark.parametrize("client", sorted(SSE_CLIENTS))
def test_every_client_gets_connected_and_an_event(server, nats, client):
    if client == "npm-eventsource":
        node_packages()  # installed before the client starts
    run = SSE_CLIENTS[client](server + STREAM, API_KEY)
    connected_then_event(run, nats, f"{client}-client")


def test_chromium_eventsource(server, nats, browser):
    run = chromium_client(browser, server, STREAM, API_KEY)
    connected_then_event(run, nats, "chromium")


@pytest.fixture(scope="module")
def behind_nginx(nats, tmp_path_factory):
    """The documented gunicorn command behind the documented nginx site."""
    nginx_binary()  # a skip for want of nginx comes before gunicorn is started
    tmp_path = tmp_path_factory.mktemp("nginx")
    gunicorn = Gunicorn(tmp_path, feed_settings(tmp_path, nats)).start()
    nginx = Nginx(tmp_path, gunicorn.port).start()
    yield nginx.base
    nginx.stop()
    gunicorn.stop()


@pytest.mark.parametrize("client", ["requests", "httpx-sse", "curl", "websockets"])
def test_through_nginx(behind_nginx, nats, client):
    run = SSE_CLIENTS[client](behind_nginx + STREAM, API_KEY)
    connected_then_event(run, nats, f"nginx-{client}")


def test_chromium_through_nginx(behind_nginx, nats, browser):
    run = chromium_client(browser, behind_nginx, STREAM, API_KEY)
    connected_then_event(run, nats, "nginx-chromium")
