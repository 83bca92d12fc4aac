"""The compatibility guard: the plugin only ever adds.

Never loosen these tests: they are what "additive only" means.
"""

import json
from pathlib import Path

from host_example.cli import spec_json
from host_example.seed import SeedPlan

from .conftest import API_KEY, NOW, build_app
from .data import seeded
from .second_host.hosts import read
from .second_host.spec import superset_problems

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGENERATE = (
    "omni-host openapi docs/openapi.json && omni-host openapi --bare docs/openapi-baseline.json"
)

REQUESTS = [
    "/api/v2/event-ops/metrics",
    "/api/v2/events/analytics",
    "/api/v2/events/analytics?allTime=true",
    "/api/v2/events/analytics?allTime=true&granularity=daily&timezone=Asia/Kolkata",
    "/api/v2/events/analytics?since=2026-03-01T00:00:00Z&until=2026-03-09T00:00:00Z",
    # No event in the window: the host's means are null.
    "/api/v2/events/analytics?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
    "/api/v2/events/analytics?since=2026-03-09T00:00:00Z&granularity=bogus&timezone=Nowhere",
    "/api/v2/events/analytics?since=not-a-date",
    "/api/v2/events/analytics?since=2026-03-09T00:00:00Z&until=2026-03-01T00:00:00Z",
    "/api/v2/dead-letters/stats",
    "/api/v2/automation-metrics",
    "/api/v2/automation-logs",
    "/api/v2/automation-logs?limit=5&status=failed",
    "/api/v2/automation-logs?limit=500",
    "/api/v2/health",
    "/api/v2/no-such-route",
]
# The plugin's own routes: with providers disabled, the bare host's answers (404s).
PLUGIN_ROUTES = [
    "/api/v2/dashboard",
    "/api/v2/dashboard/metrics",
    "/api/v2/events/stream",
    "/api/v2/events/ws",
]


def _bare(db_url):
    return build_app(db_url, OMNI_LOAD_PLUGINS=False)


def _disabled(db_url):
    return build_app(db_url, OMNI_DASHBOARD_PROVIDERS="none")


def test_baseline_is_the_spec_of_the_bare_host():
    current = spec_json(build_app("sqlite://", OMNI_LOAD_PLUGINS=False))
    stored = (DOCS / "openapi-baseline.json").read_text()
    assert current == stored, f"docs/openapi-baseline.json is stale; run: {REGENERATE}"


def test_docs_openapi_is_the_full_spec():
    current = spec_json(build_app("sqlite://", OMNI_DASHBOARD_PROVIDERS="all"))
    stored = (DOCS / "openapi.json").read_text()
    assert current == stored, f"docs/openapi.json is stale; run: {REGENERATE}"


def test_spec_with_plugin_is_a_superset_of_the_baseline():
    baseline = json.loads((DOCS / "openapi-baseline.json").read_text())
    full = json.loads(spec_json(build_app("sqlite://", OMNI_DASHBOARD_PROVIDERS="all")))
    assert superset_problems(baseline, full) == []


def test_spec_with_providers_none_is_the_baseline():
    """``none`` is invisible: the document is the bare host's, byte for byte (not a
    superset: no route, no component of the plugin)."""
    stored = (DOCS / "openapi-baseline.json").read_text()
    assert spec_json(build_app("sqlite://", OMNI_DASHBOARD_PROVIDERS="none")) == stored


def test_superset_check_catches_removals_and_changes():
    baseline = json.loads((DOCS / "openapi-baseline.json").read_text())
    changed = json.loads(json.dumps(baseline))
    schema = changed["components"]["schemas"]["EventMetrics"]
    schema["properties"]["failureRate"]["type"] = "integer"
    del schema["properties"]["pending"]
    changed["paths"]["/events/analytics"]["get"]["parameters"].pop()
    problems = superset_problems(baseline, changed)
    assert any("failureRate" in p for p in problems)
    assert any("pending" in p for p in problems)
    assert any("allTime" in p for p in problems)


def _responses(app, urls=REQUESTS):
    client = app.test_client()
    out = []
    for url in urls:
        for headers in ({"x-api-key": API_KEY}, {}):
            status, kind, body = read(client, url, headers)
            out.append((url, bool(headers), status, kind))
            out.append(body)
    return out


def test_responses_are_byte_identical_with_providers_disabled(db_url):
    bare = _bare(db_url)
    seeded(bare.extensions["omni_host"].engine, SeedPlan(events=500, days=3, now=NOW))
    urls = REQUESTS + PLUGIN_ROUTES
    assert _responses(_disabled(db_url), urls) == _responses(bare, urls)


def _host_fields(extended, bare):
    """``extended`` keeping only the keys ``bare`` has, at every level, in its order."""
    if isinstance(bare, dict) and isinstance(extended, dict):
        return {
            key: _host_fields(value, bare[key]) for key, value in extended.items() if key in bare
        }
    return extended


def test_host_fields_are_byte_identical_with_every_provider_enabled(db_url):
    """With every provider on, each response holds the bare host's fields, in its order
    and with its values (nulls included), plus only new keys; other responses are equal."""
    bare = _bare(db_url)
    seeded(bare.extensions["omni_host"].engine, SeedPlan(events=500, days=3, now=NOW))
    full = _responses(build_app(db_url, OMNI_DASHBOARD_PROVIDERS="all"))
    plain = _responses(bare)
    nulls = 0
    for head, body, bare_head, bare_body in zip(
        full[::2], full[1::2], plain[::2], plain[1::2], strict=True
    ):
        url = head[0]
        if "granularity=bogus" in url:  # a provider's argument, refused by the provider
            continue
        assert head == bare_head, url
        if head[3] != "application/json" or head[2] != 200 or url.endswith("/health"):
            assert body == bare_body, url
            continue
        ours, theirs = json.loads(body), json.loads(bare_body)
        kept = json.dumps(_host_fields(ours, theirs)).encode()
        assert kept == json.dumps(theirs).encode(), url
        nulls += json.dumps(theirs).count("null")
    assert nulls, "no host field was null: the check would not see one dropped"
