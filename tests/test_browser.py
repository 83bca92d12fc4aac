"""The dashboard page in headless Chromium against the running example host.

Needs Debian's chromium and Playwright's Python client (.ci/run installs both); skipped
without them, except under CI=true where a missing browser is a failure.
"""

import time
from pathlib import Path

import pytest

from host_example.seed import SeedPlan

from .conftest import API_KEY, NOW, build_app
from .data import seeded
from .live_support import Served

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TILES = ("total", "lastHour", "perHour", "perMinute", "failureRate")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    app = build_app(
        f"sqlite:///{tmp_path_factory.mktemp('page') / 'page.db'}", OMNI_DASHBOARD_CACHE_SECONDS=0
    )
    seeded(app.extensions["omni_host"].engine, SeedPlan(events=3000, days=3, now=NOW))
    server = Served(app)
    yield app, f"http://127.0.0.1:{server.port}"
    server.close()


def api_summary(app, zone="UTC"):
    response = app.test_client().get(
        f"/api/v2/dashboard?timezone={zone}", headers={"x-api-key": API_KEY}
    )
    return response.get_json()


def test_the_page_shows_the_api_numbers_and_the_live_feed(browser, host):
    app, base = host
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/dashboard#key={API_KEY}")
    page.wait_for_selector('[data-testid="tile-total"] .value[data-value]')
    assert "key=" not in page.url  # the key leaves the address bar at once

    summary = api_summary(app)
    events = summary["events"]
    for name in TILES:
        tile = f'[data-testid="tile-{name}"]'
        assert float(page.get_attribute(f"{tile} .value", "data-value")) == events[name]
        assert int(page.get_attribute(f"{tile} svg", "data-points")) == len(events["timeline"])
        points = page.get_attribute(f"{tile} svg polyline", "points").split()
        assert len(points) == len(events["timeline"]) == 25
    shown = {
        li.get_attribute("data-channel"): li.inner_text().split("\n")[-1]
        for li in page.query_selector_all('[data-testid="channels"] li')
    }
    assert set(shown) == set(events["byChannel"])
    assert page.inner_text("#dead-total").replace(",", "") == str(summary["deadLetters"]["total"])

    page.wait_for_function(
        "document.querySelector('[data-testid=feed-state]').textContent === 'live'"
    )
    published = time.monotonic()
    app.extensions["omni_dashboard"].live.publish(
        "message.received.discord.browser-instance",
        {
            "id": "browser-test-1",
            "type": "message.received",
            "payload": {},
            "timestamp": int(time.time() * 1000),
            "metadata": {"instanceId": "browser-instance", "channelType": "discord"},
        },
    )
    page.wait_for_selector('[data-testid="feed"] li[data-id="browser-test-1"]', timeout=2000)
    assert time.monotonic() - published < 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.select_option('[data-testid="zone"]', "Asia/Kathmandu")
    page.wait_for_function(
        "document.querySelector('[data-testid=tile-total] svg')"
        ".getAttribute('aria-label').includes('+05:45')"
    )
    label = page.get_attribute('[data-testid="tile-total"] svg', "aria-label")
    kathmandu = api_summary(app, "Asia/Kathmandu")["events"]["timeline"]
    assert label == f"{kathmandu[0]['bucket']} to {kathmandu[-1]['bucket']}"
    assert errors == []
    page.close()


def test_without_a_key_the_page_asks_for_one(browser, host):
    _, base = host
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/dashboard")
    page.wait_for_selector("#key-form:not([hidden])")
    assert page.is_hidden("#board")
    page.fill("#key", "wrong-key")
    page.press("#key", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "refused" in page.inner_text("#error")
    page.fill("#key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector('[data-testid="tile-total"] .value[data-value]')
    assert page.evaluate("sessionStorage.getItem('omniKey')") == API_KEY
    context.close()
