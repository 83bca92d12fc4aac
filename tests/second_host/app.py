"""The team's app factory, wired as docs/host-integration.md shows."""

import time

from flask import Flask, g, jsonify, request
from flask_smorest import Api
from sqlalchemy import create_engine

from omni_dashboard_plugin.host import Dashboard, Endpoint, HostFacts, utcnow

from . import views
from .schemas import Analytics, AnalyticsArgs, Metrics
from .tables import metadata

ENDPOINTS = {
    "event-ops.metrics": Endpoint(Metrics),
    "events.analytics": Endpoint(Analytics, AnalyticsArgs),
}
OPEN = ("/openapi.json", "/status")
STREAMS = ("events-stream", "events-ws")  # the plugin's stream blueprints


def presented_token() -> str | None:
    """The bearer token; on the live feed's routes also the ``access_token`` argument
    (a browser's EventSource sends no header)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    if request.blueprint in STREAMS:
        return request.args.get("access_token")
    return None


def create_app(
    database_url: str,
    *,
    token: str = "team-token",
    clock=utcnow,
    settings: dict | None = None,
    plugin_manager=None,
    migrate: bool = False,
    users: dict[str, str] | None = None,
    engine=None,
    cache_scope=None,
) -> Flask:
    """The team's API on ``database_url``; ``settings`` go to the Flask config (the
    plugin's ``OMNI_DASHBOARD_*`` among them). ``migrate`` creates the team's tables and the
    plugin's, as its deploy step does. ``users`` maps more bearer tokens to user names
    (``g.user``; ``token``'s user is ``"team"``), ``engine`` replaces the one made from
    ``database_url`` (a host whose users see different data), ``cache_scope`` goes to
    ``Dashboard``."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Team API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        **(settings or {}),
    )
    engine = engine or create_engine(database_url)
    users = {token: "team", **(users or {})}
    if migrate:
        metadata.create_all(engine)
    booted = time.monotonic()

    def facts() -> HostFacts:
        latency = views.ping(engine)
        return HostFacts(
            status="healthy" if latency is not None else "degraded",
            uptime=int(time.monotonic() - booted),
            db_latency=None if latency is None else round(latency * 1000),
            nats_connected=False,
            automations_running=False,
        )

    @app.before_request
    def authenticate():
        if request.path in OPEN:
            return None
        g.user = users.get(presented_token())
        if g.user is None:
            return jsonify(message="unauthorized"), 401
        return None

    api = Api(app)
    scoped = {"cache_scope": cache_scope} if cache_scope else {}
    dashboard = Dashboard(
        engine, ENDPOINTS, clock=clock, facts=facts, plugin_manager=plugin_manager, **scoped
    )
    dashboard.init_app(app)
    if migrate:
        dashboard.rollups.install()
    api.register_blueprint(views.build(dashboard, engine))
    dashboard.register_blueprints(app, api)
    dashboard.started(app)
    return app
