"""The dashboard page in headless Chromium against the running example host.

Needs Debian's chromium and Playwright's Python client (.ci/run installs both); skipped
without them, except under CI=true where a missing browser is a failure.
"""

import math
import time
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from host_example.seed import SeedPlan

from .conftest import API_KEY, NOW, build_app
from .data import seeded
from .live_support import Served
from .waiting import CEILING

pytestmark = pytest.mark.slow  # Chromium

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
MINUS = "\u2212"
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


def api_summary(app, zone="UTC", **filters):
    query = urlencode({"timezone": zone, "compare": "previous_period", **filters})
    response = app.test_client().get(f"/api/v2/dashboard?{query}", headers={"x-api-key": API_KEY})
    return response.get_json()


def api_analytics(app, hours, **filters):
    since = (NOW - timedelta(hours=hours)).isoformat() + "Z"
    query = urlencode({"timezone": "UTC", "since": since, **filters})
    response = app.test_client().get(
        f"/api/v2/events/analytics?{query}", headers={"x-api-key": API_KEY}
    )
    return response.get_json()


def open_page(browser, base):
    """The dashboard page, its clock at the host's NOW (the page asks for windows that end
    now), its errors collected."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.clock.set_fixed_time(NOW.replace(tzinfo=UTC))
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{base}/dashboard#key={API_KEY}")
    page.wait_for_selector('[data-testid="tile-total"] .value[data-value]')
    return page


def shown_value(page, name):
    return float(page.get_attribute(f'[data-testid="tile-{name}"] .value', "data-value"))


def test_the_page_shows_the_api_numbers_and_the_live_feed(browser, host):
    app, base = host
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.clock.set_fixed_time(NOW.replace(tzinfo=UTC))
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
        # The sparklines come from a second request (the range's analytics).
        page.wait_for_selector(f"{tile} svg[data-points]")
        assert int(page.get_attribute(f"{tile} svg", "data-points")) == len(events["timeline"])
        points = page.get_attribute(f"{tile} svg polyline", "points").split()
        assert len(points) == len(events["timeline"]) == 25
    shown = {
        li.get_attribute("data-channel"): li.inner_text().split("\n")[-1]
        for li in page.query_selector_all('[data-testid="channels"] li')
    }
    assert set(shown) == set(events["byChannel"])
    assert page.inner_text("#dead-total").replace(",", "") == str(summary["deadLetters"]["total"])
    assert page.is_visible('[data-testid="feed-empty"]')
    assert "Waiting for events" in page.inner_text('[data-testid="feed-empty"]')

    page.wait_for_function(
        "document.querySelector('[data-testid=feed-state]').textContent === 'live'"
    )
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
    page.wait_for_selector(
        '[data-testid="feed"] li[data-id="browser-test-1"]', timeout=CEILING * 1000
    )
    assert page.is_hidden('[data-testid="feed-empty"]')
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


def test_filters_range_switch_and_comparison_badges(browser, host):
    app, base = host
    page = open_page(browser, base)
    events = api_summary(app)["events"]
    previous = events["previous"]
    badge = page.get_attribute('[data-testid="tile-perHour"] .delta', "data-change")
    assert float(badge) == (events["perHour"] - previous["perHour"]) / previous["perHour"] * 100
    text = page.inner_text('[data-testid="tile-perHour"] .delta')
    sign = "+" if float(badge) > 0 else MINUS if float(badge) < 0 else "±"
    assert text == f"{sign}{abs(math.floor(float(badge) + 0.5))} % vs previous 24 h"

    # The failure-rate sparkline plots failed / count per bucket, not traffic.
    day = api_analytics(app, 24)["timeline"]
    rates = [b["failed"] / b["count"] * 100 if b["count"] else 0 for b in day]
    points = page.get_attribute('[data-testid="tile-failureRate"] svg polyline', "points")
    heights = [float(p.split(",")[1]) for p in points.split()]
    expected = [38 - r / max(1, *rates) * 36 for r in rates]
    assert len(heights) == len(expected) == 25
    assert all(abs(h - e) <= 0.006 for h, e in zip(heights, expected, strict=True))
    assert len(set(heights)) > 1  # the seeded day has failures in some hours

    page.select_option('[data-testid="channel"]', "discord")
    discord = api_summary(app, channel="discord")["events"]
    assert discord["total"] != events["total"]
    page.wait_for_function(
        f"document.querySelector('[data-testid=tile-total] .value').dataset.value"
        f" === '{discord['total']}'"
    )
    for name in ("lastHour", "perHour", "perMinute", "failureRate"):
        assert shown_value(page, name) == discord[name]

    instance = page.eval_on_selector_all(
        '[data-testid="instance"] option', "options => options.map(o => o.value)"
    )[1]
    page.select_option('[data-testid="instance"]', instance)
    narrowed = api_summary(app, channel="discord", instanceId=instance)["events"]
    page.wait_for_function(
        f"document.querySelector('[data-testid=tile-total] .value').dataset.value"
        f" === '{narrowed['total']}'"
    )
    assert shown_value(page, "lastHour") == narrowed["lastHour"]

    page.click('[data-range="7d"]')
    page.wait_for_selector('#board[data-range="7d"]')
    week = api_analytics(app, 24 * 7, channel="discord", instanceId=instance)
    spark = '[data-testid="tile-total"] svg'
    assert int(page.get_attribute(spark, "data-points")) == len(week["timeline"]) == 169
    assert page.inner_text("#channels-title small") == "last 7 days"
    shown = page.inner_text("#inbound").replace(",", "")
    assert shown == str(week["byDirection"]["inbound"])
    assert page.get_attribute('[data-range="7d"]', "aria-pressed") == "true"
    assert page.errors == []
    page.close()


def test_the_direction_legend_keeps_each_item_on_one_line(browser, host):
    """Narrow panel: "Inbound 1,234" and "Outbound 567" may wrap between, never within."""
    _, base = host
    page = open_page(browser, base)
    page.set_viewport_size({"width": 360, "height": 900})
    for item in page.query_selector_all('[data-testid="direction-legend"] .legend-item'):
        box = item.bounding_box()
        line = float(item.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
        assert box["height"] < 1.5 * line, item.inner_text()
    page.close()


def test_the_favicon_is_served(host):
    app, _ = host
    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
