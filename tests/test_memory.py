"""What a response leaves behind in the serving process: nothing that outlives it."""

import gc

import pytest

from omni_dashboard_plugin.reading import Reader

from .conftest import API_KEY, build_app

CALLS = (
    "/api/v2/dashboard",
    "/api/v2/event-ops/metrics",
    "/api/v2/events/analytics?channel=discord",
    "/api/v2/dashboard/metrics",
)


def _readers() -> int:
    gc.collect()
    return sum(isinstance(thing, Reader) for thing in gc.get_objects())


@pytest.mark.parametrize("rollups", ["on", "off"])
def test_a_response_keeps_no_reader_alive(db_url, rollups):
    """The readers a response reads through (and with them its connection and every
    answer) are gone once it has been sent: they were kept for ever, one per response, and
    with them the process's memory and its full collections grew without end."""
    app = build_app(db_url, OMNI_DASHBOARD_ROLLUPS=rollups, OMNI_DASHBOARD_CACHE_SECONDS=0)
    if rollups == "on":
        app.extensions["omni_dashboard"].rollups.refresh()
    client = app.test_client()
    for url in CALLS:  # once each first: whatever the process keeps for good is made
        assert client.get(url, headers={"x-api-key": API_KEY}).status_code == 200
    before = _readers()
    for _ in range(5):
        for url in CALLS:
            assert client.get(url, headers={"x-api-key": API_KEY}).status_code == 200
    assert _readers() == before == 0
