"""The NATS bridge's choices: JetStream created, used or off; subscribing retried."""

import nats
import pytest

from omni_dashboard_plugin.live.bridge import FEED_MAX_AGE, FEED_MAX_BYTES, FEED_STREAM, NatsBridge

from .conftest import build_app
from .live_support import add_streams, outside_any_loop
from .waiting import wait_until

pytestmark = pytest.mark.slow  # a real nats-server


def feed(tmp_path, url, **config):
    app = build_app(f"sqlite:///{tmp_path / 'bridge.db'}", OMNI_NATS_URL=url, **config)
    return app.extensions["omni_dashboard"].live


def stream_config(url: str, name: str):
    found = []

    async def run():
        client = await nats.connect(url)
        found.append((await client.jetstream().stream_info(name)).config)
        await client.close()

    outside_any_loop(run)
    return found[0]


def test_create_makes_the_documented_stream_when_none_captures_the_subjects(nats_server, tmp_path):
    live = feed(tmp_path, nats_server.url, OMNI_DASHBOARD_STREAM_JETSTREAM="create")
    try:
        assert live.hub().mode == "jetstream"
    finally:
        live.stop()
    config = stream_config(nats_server.url, FEED_STREAM)
    assert sorted(config.subjects) == ["instance.>", "message.>"]
    assert config.max_age == FEED_MAX_AGE and config.max_bytes == FEED_MAX_BYTES
    assert config.storage == "file" and config.discard == "old"


@pytest.mark.parametrize(("setting", "mode"), [("use", "buffer"), ("off", "buffer")])
def test_without_streams_use_and_off_stay_in_buffer_mode(nats_server, tmp_path, setting, mode):
    live = feed(tmp_path, nats_server.url, OMNI_DASHBOARD_STREAM_JETSTREAM=setting)
    try:
        assert live.hub().mode == mode
    finally:
        live.stop()


def test_off_ignores_existing_streams(nats_server, tmp_path):
    add_streams(nats_server.url)
    live = feed(tmp_path, nats_server.url, OMNI_DASHBOARD_STREAM_JETSTREAM="off")
    try:
        assert live.hub().mode == "buffer"
    finally:
        live.stop()


def test_a_failing_subscription_is_retried_until_it_works(nats_server, monkeypatch):
    from omni_dashboard_plugin.live.hub import Hub

    add_streams(nats_server.url)
    real, failures = NatsBridge._find_streams, []

    async def flaky(self):
        if len(failures) < 2:
            failures.append(1)
            raise TimeoutError("JetStream API did not answer")
        return await real(self)

    monkeypatch.setattr(NatsBridge, "_find_streams", flaky)
    hub = Hub(replay_size=10, queue_size=10, max_clients=10)
    bridge = NatsBridge(nats_server.url, ["message.>", "instance.>"], hub, 10)
    bridge.start(wait=10)
    try:
        wait_until(  # two retries: 0.2 s, then 0.4 s of backoff
            lambda: hub.nats_connected and hub.mode == "jetstream", "JetStream mode after retries"
        )
        assert failures == [1, 1]
        assert hub.nats_connected is True and hub.mode == "jetstream"
    finally:
        bridge.stop()
