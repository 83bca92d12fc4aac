"""Connections a request holds at once, as docs/host-integration.md states them."""

import threading

import pytest
from sqlalchemy import event

from . import rollup_support as rs
from .conftest import API_KEY, NOW, build_app
from .waiting import wait_until

CALLS = {
    "dashboard": "/api/v2/dashboard",
    "event-ops": "/api/v2/event-ops/metrics",
    "analytics": "/api/v2/events/analytics?channel=discord",
}


def _peaks(app, engine) -> dict[str, int]:
    """The most connections checked out of the pool at once during each call."""
    lock, state = threading.Lock(), {"out": 0, "peak": 0}

    def checkout(*_):
        with lock:
            state["out"] += 1
            state["peak"] = max(state["peak"], state["out"])

    def checkin(*_):
        with lock:
            state["out"] -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    peaks = {}
    try:
        client = app.test_client()
        for name, url in CALLS.items():
            # A read alongside that lost its race may return its connection after the
            # response did: counted where it was taken, not as the next call's (-1).
            wait_until(lambda: state["out"] == 0, "the earlier calls' connections returned")
            state["peak"] = 0
            response = client.get(url, headers={"x-api-key": API_KEY})
            assert response.status_code == 200, response.get_json()
            peaks[name] = state["peak"]
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    return peaks


@pytest.mark.slow  # a seeded database per case, seconds each
@pytest.mark.parametrize(
    ("rollups", "isolation", "expected"),
    [
        # The host's transaction is the snapshot: the plugin reads on it, plus the p95.
        ("on", "REPEATABLE READ", {"dashboard": 1, "event-ops": 2, "analytics": 1}),
        # The plugin opens a snapshot of its own beside the host's, plus the p95.
        ("on", "READ COMMITTED", {"dashboard": 1, "event-ops": 3, "analytics": 2}),
        # Dead letters counted raw, beside the dashboard; the host computes event-ops.
        ("off", "REPEATABLE READ", {"dashboard": 2, "event-ops": 1, "analytics": 1}),
    ],
)
def test_connections_per_request(pg_url, rollups, isolation, expected):
    """PostgreSQL: at most the documented number of pooled connections per request, on
    either kind of host, with rollups serving reads (dead letters kept by triggers) or off."""
    pair = rs.Pair(pg_url)
    pair.clear(NOW)
    pair.rollups.refresh()
    app = build_app(
        pg_url,
        OMNI_DASHBOARD_ROLLUPS=rollups,
        OMNI_DASHBOARD_ROLLUPS_REFRESH="cron",
        OMNI_DASHBOARD_CACHE_SECONDS=0,
    )
    engine = app.extensions["omni_host"].engine
    engine.update_execution_options(isolation_level=isolation)
    peaks = _peaks(app, engine)
    for name, most in expected.items():
        assert 1 <= peaks[name] <= most, (name, peaks)
    if isolation == "READ COMMITTED":
        assert peaks["analytics"] == 2  # the plugin's own snapshot beside the host's
    if rollups == "off":
        assert peaks["event-ops"] == 1  # the host's own payload, on its connection
