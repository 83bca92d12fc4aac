"""The reference host's app factory."""

import os
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import Flask

from omni_dashboard_plugin.host import Dashboard, Endpoint, make_plugin_manager, utcnow

from . import auth, errors, openapi
from .automation_engine import AutomationEngine
from .db import create_tables, default_url, make_engine
from .health import host_facts
from .nats_check import NatsProbe
from .routes import automations, dead_letters, event_ops, events, health, page
from .schemas import (
    AnalyticsQuerySchema,
    AutomationMetricsSchema,
    EventAnalyticsSchema,
    EventMetricsSchema,
)

ENDPOINTS = {
    "event-ops.metrics": Endpoint(EventMetricsSchema),
    "events.analytics": Endpoint(EventAnalyticsSchema, AnalyticsQuerySchema),
    "automation-metrics": Endpoint(AutomationMetricsSchema),
}
ENV_KEYS = (
    "OMNI_DATABASE_URL",
    "OMNI_API_KEY",
    "OMNI_NATS_URL",
    "OMNI_DB_TIMEOUT_MS",
    "OMNI_DB_STATEMENT_TIMEOUT_MS",
)


@dataclass
class HostState:
    """What the host's views share: engine, clock, start time, NATS check, automation engine."""

    engine: object
    clock: object
    started_at: datetime
    nats_probe: NatsProbe | None
    automation_engine: AutomationEngine


def _configure(app: Flask, config: dict | None) -> None:
    app.config.update(
        API_TITLE="Omni API (example host)",
        API_VERSION="2.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "servers": openapi.SERVERS,
            "security": auth.SECURITY,
            "components": {"securitySchemes": auth.SECURITY_SCHEMES},
            "info": {"description": "Omni's API with the dashboard plugin's extensions."},
        },
        OMNI_LOAD_PLUGINS=True,
        OMNI_EXTRA_PLUGINS=(),
        OMNI_CLOCK=utcnow,
        OMNI_AUTOMATIONS_RUNNING=True,
        OMNI_HEALTH_NATS_TTL=5,
        OMNI_MAX_URL_LENGTH=8000,
        OMNI_MAX_HEADER_BYTES=16384,
        OMNI_DB_TIMEOUT_MS=5000,
        OMNI_DB_STATEMENT_TIMEOUT_MS=30000,
        OMNI_INSTALL_PLUGIN_TABLES=True,
    )
    for key in ENV_KEYS:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    app.config.update(config or {})
    app.config.setdefault("OMNI_DATABASE_URL", default_url(app.instance_path))
    if not app.config.get("OMNI_API_KEY"):
        app.config["OMNI_API_KEY"] = secrets.token_urlsafe(24)
        app.config["OMNI_API_KEY_GENERATED"] = True


def create_app(config: dict | None = None) -> Flask:
    """Build the example host: Omni's endpoints, API-key auth, and the ``omni`` plugins.

    Raises :class:`omni_dashboard_plugin.config.ConfigError` on a bad plugin setting.
    """
    # No /static route: the page's files are served by routes/page.py, at paths the docs list.
    app = Flask("host_example", instance_relative_config=True, static_folder=None)
    app.url_map.merge_slashes = False  # no redirect that would echo a URL (and its api_key)
    _configure(app, config)

    engine = make_engine(
        app.config["OMNI_DATABASE_URL"],
        timeout_ms=int(app.config["OMNI_DB_TIMEOUT_MS"]),
        statement_timeout_ms=int(app.config["OMNI_DB_STATEMENT_TIMEOUT_MS"]),
    )
    create_tables(engine)
    clock = app.config["OMNI_CLOCK"]
    app.extensions["omni_host"] = HostState(
        engine=engine,
        clock=clock,
        started_at=clock(),
        nats_probe=(
            NatsProbe(url, ttl=float(app.config["OMNI_HEALTH_NATS_TTL"]))
            if (url := app.config.get("OMNI_NATS_URL"))
            else None
        ),
        automation_engine=AutomationEngine(running=bool(app.config["OMNI_AUTOMATIONS_RUNNING"])),
    )

    api = errors.OmniApi(app)
    openapi.install(api)
    plugin_manager = make_plugin_manager(
        load_entrypoints=app.config["OMNI_LOAD_PLUGINS"],
        plugins=app.config["OMNI_EXTRA_PLUGINS"],
    )
    state = app.extensions["omni_host"]
    dashboard = Dashboard(
        engine,
        ENDPOINTS,
        clock=clock,
        facts=lambda: host_facts(state),
        plugin_manager=plugin_manager,
    )
    dashboard.init_app(app)
    # The reference host creates its tables at start-up (create_tables above), and the
    # plugin's unless told not to; a production host runs `flask omni-dashboard install` as
    # a deploy step instead.
    if app.config["OMNI_INSTALL_PLUGIN_TABLES"]:
        dashboard.rollups.install()
    for area in (event_ops, events, dead_letters, automations, health):
        api.register_blueprint(area.build(dashboard))
    dashboard.register_blueprints(app, api)
    app.register_blueprint(page.build())

    errors.register_request_limits(app)
    auth.install(app)
    errors.register_database_errors(app)
    dashboard.started(app)
    return app
