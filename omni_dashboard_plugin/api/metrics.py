"""GET /api/v2/dashboard/metrics: the dashboard's numbers in Prometheus' text format."""

from flask import Response, request
from flask_smorest import Blueprint
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from ..config import ConfigError
from ..handle import DashboardHandle
from ..metrics.collector import DashboardCollector

ENDPOINT = "dashboard-metrics.metrics"

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
RESPONSES = {
    "200": {
        "description": "The metric families of docs/prometheus.md: Prometheus' text format, "
        "or OpenMetrics when the Accept header asks for application/openmetrics-text",
        "content": {
            TEXT: {"schema": {"type": "string"}},
            OPENMETRICS: {"schema": {"type": "string"}},
        },
    }
}


def build(dashboard: DashboardHandle) -> Blueprint:
    """The scrape route at ``OMNI_DASHBOARD_METRICS_PATH``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DashboardCollector(dashboard))
    blp = Blueprint(
        "dashboard-metrics",
        __name__,
        description="The dashboard's numbers for Prometheus (see docs/prometheus.md).",
    )

    @blp.route(dashboard.config.metrics_path, methods=["GET"])
    @blp.doc(responses=RESPONSES)
    def metrics():
        """Event, dead-letter, automation and instance counts, and the plugin's own health.

        One scrape reads one snapshot, from rollups when they are on: it costs what a
        dashboard request costs.
        """
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encode(registry), content_type=content_type)

    return blp


def check_not_shadowing(app, path: str) -> None:
    """Stop start-up when another route of ``app`` (the host's or the plugin's) answers
    GET ``path`` too: one of the two would never be reached."""
    others = Map([rule.empty() for rule in app.url_map.iter_rules() if rule.endpoint != ENDPOINT])
    try:
        endpoint, _ = others.bind("localhost").match(path, method="GET")
    except HTTPException:  # no other route serves GET there (or it redirects elsewhere)
        return
    raise ConfigError(
        f"OMNI_DASHBOARD_METRICS_PATH={path!r} is also the path of the route {endpoint!r}: "
        "choose a path no other route serves (the default is /api/v2/dashboard/metrics) "
        "or 'off'"
    )
