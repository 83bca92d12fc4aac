"""The host contract end to end, with providers defined here (as a third party would)."""

import json
from datetime import timedelta

import pytest
from flask import Flask
from marshmallow import fields, validate
from sqlalchemy import create_engine, func, select

from host_example.schemas import AnalyticsQuerySchema, EventAnalyticsSchema
from host_example.seed import SeedPlan
from host_example.tables import omni_events
from omni_dashboard_plugin.config import ConfigError
from omni_dashboard_plugin.facts import HostFacts
from omni_dashboard_plugin.hookspecs import hookimpl
from omni_dashboard_plugin.host import Dashboard, Endpoint
from omni_dashboard_plugin.provider import InvalidArgument, Provider

from .conftest import NOW, build_app, get_json
from .data import seeded


def _window_count(ctx):
    if ctx.args["say"] == "boom":
        raise InvalidArgument("say", "must not be boom")
    count = ctx.connection.execute(select(func.count()).select_from(omni_events)).scalar_one()
    return {"echoed": f"{ctx.args['say']}@{ctx.now.isoformat()}", "rowsSeen": count}


ECHO = Provider(
    name="echo",
    endpoint="events.analytics",
    fields={"echoed": fields.String(required=True), "rowsSeen": fields.Integer(required=True)},
    arguments={"say": fields.String(load_default="hi", validate=validate.Length(max=10))},
    compute=_window_count,
)


class Plugin:
    """A third-party plugin contributing the given providers."""

    def __init__(self, *providers):
        self.providers = providers

    @hookimpl
    def omni_dashboard_providers(self):
        return list(self.providers)


def app_with(db_url, *providers, enabled="all"):
    return build_app(
        db_url,
        OMNI_LOAD_PLUGINS=False,
        OMNI_EXTRA_PLUGINS=[Plugin(*providers)],
        OMNI_DASHBOARD_PROVIDERS=enabled,
    )


@pytest.fixture(scope="module")
def data(db_url):
    app = build_app(db_url, OMNI_LOAD_PLUGINS=False)
    return seeded(app.extensions["omni_host"].engine, SeedPlan(events=200, days=2, now=NOW))


def test_provider_fields_are_merged_into_the_response(db_url, data):
    app = app_with(db_url, ECHO)
    status, body = get_json(app.test_client(), "/api/v2/events/analytics?say=yo&allTime=true")
    assert status == 200
    assert body["echoed"] == f"yo@{NOW.isoformat()}"
    assert body["rowsSeen"] == len(data.events)
    assert body["totalMessages"] == len(data.events)


def test_provider_fields_and_arguments_are_documented(db_url):
    spec = app_with(db_url, ECHO).test_client().get("/openapi.json").get_json()
    schema = spec["components"]["schemas"]["EventAnalytics"]
    assert {"echoed", "rowsSeen", "totalMessages"} <= set(schema["properties"])
    assert {"echoed", "rowsSeen"} <= set(schema["required"])
    params = spec["paths"]["/events/analytics"]["get"]["parameters"]
    assert {"say", "since", "until", "instanceId", "allTime"} == {p["name"] for p in params}


def test_disabled_provider_vanishes_from_responses_and_spec(db_url, data):
    app = app_with(db_url, ECHO, enabled="none")
    status, body = get_json(app.test_client(), "/api/v2/events/analytics?say=yo")
    assert status == 200 and "echoed" not in body
    spec = app.test_client().get("/openapi.json").get_json()
    assert "echoed" not in spec["components"]["schemas"]["EventAnalytics"]["properties"]
    params = spec["paths"]["/events/analytics"]["get"]["parameters"]
    assert "say" not in {p["name"] for p in params}


def test_provider_argument_errors_use_the_envelope(db_url):
    client = app_with(db_url, ECHO).test_client()
    for query, message in (("say=boom", "must not be boom"), ("say=" + "x" * 11, "Longer")):
        status, body = get_json(client, "/api/v2/events/analytics?" + query)
        assert status == 422
        assert body["error"]["code"] == "VALIDATION_ERROR"
        assert "say" in body["error"]["details"]
        assert message.lower() in str(body["error"]["details"]["say"]).lower()


def test_unknown_provider_name_refuses_start_and_lists_installed(db_url):
    with pytest.raises(ConfigError) as info:
        app_with(db_url, ECHO, enabled="echo,rates-typo")
    assert "rates-typo" in str(info.value) and "echo" in str(info.value)


def _provider(name, endpoint="events.analytics", field="extra", argument=None):
    return Provider(
        name=name,
        endpoint=endpoint,
        fields={field: fields.Integer()},
        arguments={argument: fields.String()} if argument else {},
        compute=lambda ctx: {field: 1},
    )


@pytest.mark.parametrize(
    ("providers", "words"),
    [
        ((_provider("clash", field="totalMessages"),), ["totalMessages", "the host"]),
        ((_provider("a"), _provider("b")), ["'extra'", "provider 'a'"]),
        ((_provider("arg", argument="since"),), ["since", "query argument"]),
        ((_provider("twin"), _provider("twin", field="other")), ["twin", "uninstall"]),
    ],
)
def test_clashes_refuse_start_up(db_url, providers, words):
    with pytest.raises(ConfigError) as info:
        app_with(db_url, *providers)
    for word in words:
        assert word in str(info.value)


LOST = _provider("lost", endpoint="nowhere")


def test_all_leaves_out_a_provider_of_an_endpoint_the_host_does_not_serve(db_url, caplog):
    """``all`` is every provider the host can serve; start-up says which were left out."""
    app = app_with(db_url, ECHO, LOST)
    assert set(app.extensions["omni_dashboard"].registry.enabled) == {"echo"}
    [warning] = [r.getMessage() for r in caplog.records if "'lost'" in r.getMessage()]
    assert "not enabled" in warning and "'nowhere'" in warning and "does not serve" in warning


def test_a_provider_named_for_an_endpoint_the_host_does_not_serve_stops_start_up(db_url):
    with pytest.raises(ConfigError) as info:
        app_with(db_url, ECHO, LOST, enabled="echo,lost")
    for word in ("'lost'", "'nowhere'", "does not serve", "OMNI_DASHBOARD_PROVIDERS"):
        assert word in str(info.value)


def test_clashing_provider_can_be_left_disabled(db_url):
    app = app_with(db_url, ECHO, _provider("clash", field="totalMessages"), enabled="echo")
    assert "echo" in app.extensions["omni_dashboard"].registry.enabled


def test_provider_returning_undeclared_fields_is_a_bug_not_a_silent_merge(db_url):
    sneaky = Provider(
        name="sneaky",
        endpoint="event-ops.metrics",
        fields={"extra": fields.Integer()},
        compute=lambda ctx: {"extra": 1, "totalEvents": -1},
    )
    app = app_with(db_url, sneaky)
    with pytest.raises(RuntimeError, match="sneaky"):
        app.test_client().get("/api/v2/event-ops/metrics", headers={"x-api-key": "test-key"})


def test_the_package_registers_through_the_omni_entry_point(db_url):
    app = build_app(db_url)
    names = dict(app.extensions["omni_dashboard"].registry.plugin_manager.list_name_plugin())
    assert names["omni_dashboard"].__name__ == "omni_dashboard_plugin.plugin"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("OMNI_DASHBOARD_TIMEZONE", "Mars/Olympus", ["OMNI_DASHBOARD_TIMEZONE", "IANA"]),
        ("OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS", "lots", ["whole number"]),
        ("OMNI_DASHBOARD_TIMELINE_MAX_BUCKETS", "3", ["between"]),
    ],
)
def test_bad_settings_refuse_start_up_with_a_fix(db_url, key, value, words):
    with pytest.raises(ConfigError) as info:
        build_app(db_url, **{key: value})
    for word in words:
        assert word in str(info.value)


NARROWING = Provider(
    name="narrowing",
    endpoint="events.analytics",
    fields={},
    arguments={"team": fields.String()},
    narrows=("team",),
    compute=lambda ctx: {},
)


def test_a_filter_no_plugin_can_apply_to_the_hosts_fields_refuses_start_up(db_url):
    with pytest.raises(ConfigError, match=r"narrowing.*no installed plugin computes"):
        app_with(db_url, NARROWING, enabled="narrowing")
    app = app_with(db_url, NARROWING)  # all: left out (and logged)
    assert "narrowing" not in app.extensions["omni_dashboard"].registry.enabled


def test_a_filtered_request_needs_the_hosts_fields_from_base(db_url, data):
    """extend() refuses a filtered request whose base the host computed itself (its
    unfiltered numbers would go out under the filter), and accepts it through base()."""
    app = build_app(db_url)
    dashboard = app.extensions["omni_dashboard"]
    engine = app.extensions["omni_host"].engine
    args = {"channel": "discord", "allTime": True}
    with (
        app.test_request_context(),
        engine.connect() as conn,
        pytest.raises(RuntimeError, match=r"Dashboard\.base"),
    ):
        dashboard.extend("events.analytics", {}, connection=conn, args=args, now=NOW)
    with app.test_request_context(), engine.connect() as conn:
        unfiltered = lambda: pytest.fail("the host's unfiltered fields")  # noqa: E731
        base = dashboard.base("events.analytics", unfiltered, connection=conn, now=NOW, args=args)
        merged = dashboard.extend("events.analytics", base, connection=conn, args=args, now=NOW)
    discord = [e for e in data.events if e["channel"] == "discord"]
    assert merged["totalMessages"] == sum(merged["byChannel"].values()) == len(discord) > 0


def test_optional_fields_may_be_left_out_required_ones_may_not(db_url):
    def sometimes(ctx):
        return {} if ctx.args.get("say") == "quiet" else {"maybe": 1}

    optional = Provider(
        name="optional",
        endpoint="events.analytics",
        fields={"maybe": fields.Integer()},
        arguments={"say": fields.String()},
        compute=sometimes,
    )
    app = app_with(db_url, optional)
    _, loud = get_json(app.test_client(), "/api/v2/events/analytics")
    _, quiet = get_json(app.test_client(), "/api/v2/events/analytics?say=quiet")
    assert loud["maybe"] == 1 and "maybe" not in quiet
    required = Provider(
        name="required",
        endpoint="events.analytics",
        fields={"always": fields.Integer(required=True)},
        compute=lambda ctx: {},
    )
    app = app_with(db_url, required)
    with pytest.raises(RuntimeError, match="required"):
        app.test_client().get("/api/v2/events/analytics", headers={"x-api-key": "test-key"})


GOOD_FACTS = {
    "status": "healthy",
    "uptime": 1,
    "db_latency": None,
    "nats_connected": False,
    "automations_running": True,
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "ok"),  # a check's status, not the host's
        ("status", "unhealthy"),
        ("uptime", 1.5),
        ("uptime", True),
        ("db_latency", "3"),
        ("nats_connected", None),
        ("automations_running", 1),
    ],
)
def test_host_facts_refuse_values_outside_the_contract(name, value):
    """HostFacts takes the values docs/host-integration.md states, and names the field of
    any other."""
    assert HostFacts(**{**GOOD_FACTS, "status": "degraded", "db_latency": 3}).status == "degraded"
    with pytest.raises(
        ValueError, match=rf"HostFacts\.{name}=.*: (use one of|an integer|a boolean)"
    ):
        HostFacts(**{**GOOD_FACTS, name: value})


def _raises():
    raise OSError("the health probe's socket closed")


@pytest.mark.parametrize(
    ("facts", "logged"),
    [
        (lambda: dict(GOOD_FACTS), "returned dict, not a HostFacts"),
        (_raises, "facts callable raised"),
    ],
)
def test_facts_that_fail_are_a_503_envelope_and_a_logged_cause(db_url, caplog, facts, logged):
    app = build_app(db_url)
    app.extensions["omni_dashboard"].facts = facts
    status, body = get_json(app.test_client(), "/api/v2/dashboard")
    assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE", body
    assert "Traceback" not in json.dumps(body)
    assert logged in caplog.text


@pytest.mark.parametrize("host_computes", [True, False])
def test_a_host_that_scopes_its_payload_keeps_it_with_rollups_on(db_url, data, host_computes):
    """``Endpoint(host_computes=True)``: the host's per-caller numbers, not the plugin's
    database-wide ones, though its fields are Omni's and rollups serve reads."""
    engine = create_engine(db_url)
    app = Flask(__name__)
    app.config.update(OMNI_DASHBOARD_ROLLUPS="on")
    endpoint = Endpoint(EventAnalyticsSchema, AnalyticsQuerySchema, host_computes=host_computes)
    dashboard = Dashboard(engine, {"events.analytics": endpoint}, clock=lambda: NOW)
    dashboard.init_app(app)
    dashboard.rollups.install()
    dashboard.started(app)
    # Rolled up from this test's data only: another test's rollups on this database (its
    # watermark ahead of these rows) would be read as final (docs/rollups.md, exactness).
    dashboard.rollups.reset()
    dashboard.rollups.refresh()
    caller = data.events[0]["instance_id"]  # the instance the caller may see
    since = NOW - timedelta(hours=24)
    window = [e for e in data.events if e["received_at"] >= since]
    mine = [e for e in window if e["instance_id"] == caller]
    assert 0 < len(mine) < len(window)
    with app.test_request_context(), engine.connect() as conn:
        payload = dashboard.base(
            "events.analytics", lambda: {"totalMessages": len(mine)}, connection=conn, now=NOW
        )
    engine.dispose()
    assert payload["totalMessages"] == (len(mine) if host_computes else len(window))
