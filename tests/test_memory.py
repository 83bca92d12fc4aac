"""What a response leaves behind in the serving process: nothing that outlives it."""

import gc

import pytest

from omni_dashboard_plugin.reading import Reader

from .conftest import API_KEY, build_app

INSTANCE = "00000000-0000-0000-0000-000000000001"
CALLS = (
    "/api/v2/dashboard",
    f"/api/v2/dashboard?instanceId={INSTANCE}&compare=previous_period&timezone=Asia/Kolkata",
    "/api/v2/event-ops/metrics",
    "/api/v2/events/analytics?channel=discord&compare=previous_period",
    "/api/v2/automation-metrics",
    "/api/v2/dashboard/metrics",
    "/api/v2/dashboard?timezone=Not/AZone",  # a 422
)


def _client(db_url, rollups):
    app = build_app(db_url, OMNI_DASHBOARD_ROLLUPS=rollups, OMNI_DASHBOARD_CACHE_SECONDS=0)
    if rollups == "on":
        app.extensions["omni_dashboard"].rollups.refresh()
    return app.test_client()


def _rounds(client, rounds: int) -> None:
    for _ in range(rounds):
        for url in CALLS:
            status = client.get(url, headers={"x-api-key": API_KEY}).status_code
            assert status in (200, 422), url


def _live(kind=object) -> int:
    gc.collect()
    return sum(isinstance(thing, kind) for thing in gc.get_objects())


@pytest.mark.parametrize("rollups", ["on", "off"])
def test_a_response_keeps_no_reader_alive(db_url, rollups):
    """The readers a response reads through (and with them its connection and every
    answer) are gone once it has been sent: they were kept for ever, one per response, and
    with them the process's memory and its full collections grew without end."""
    client = _client(db_url, rollups)
    _rounds(client, 1)  # whatever the process keeps for good is made
    before = _live(Reader)
    _rounds(client, 3)
    assert _live(Reader) == before == 0


@pytest.mark.parametrize("rollups", ["on", "off"])
def test_the_heap_does_not_grow_with_responses(db_url, rollups):
    """Ten more rounds of every call leave fewer new objects in the heap than responses:
    nothing is kept per response (a leak of one object each would fail)."""
    client = _client(db_url, rollups)
    _rounds(client, 10)  # caches, pools, compiled statements and the like fill up
    before = _live()
    _rounds(client, 10)
    assert _live() - before < 10 * len(CALLS)
