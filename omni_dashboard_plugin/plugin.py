"""This package's own hook implementations: the built-in providers are plugins too."""

import logging

from .api import dashboard as dashboard_api
from .api import errors, stream_schemas
from .api import metrics as metrics_api
from .api import stream as stream_api
from .hookspecs import hookimpl
from .provider import Accelerator
from .providers import automations, breakdowns, comparison, filters, rates, timeline
from .queries import analytics, event_metrics
from .summary import TABLES as SUMMARY_TABLES
from .window import HOST_ARGUMENTS, EventWindow

log = logging.getLogger(__name__)


@hookimpl
def omni_dashboard_providers():
    """The built-in providers."""
    return [
        rates.PROVIDER,
        timeline.PROVIDER,
        breakdowns.PROVIDER,
        automations.PROVIDER,
        filters.PROVIDER,
        comparison.PROVIDER,
    ]


def _event_metrics(reader, now, args):
    return event_metrics.event_metrics(reader, now)


def _event_analytics(reader, now, args):
    return analytics.event_analytics(reader, EventWindow.from_args(args, now))


@hookimpl
def omni_dashboard_accelerators():
    """Omni's /event-ops/metrics and /events/analytics through a reader."""
    return {
        "event-ops.metrics": Accelerator(
            _event_metrics, frozenset(event_metrics.FIELDS), tables=event_metrics.TABLES
        ),
        "events.analytics": Accelerator(
            _event_analytics,
            frozenset(analytics.FIELDS),
            frozenset(HOST_ARGUMENTS),
            analytics.TABLES,
        ),
    }


@hookimpl
def omni_register_blueprints(app, api, dashboard):
    """The live feed routes, the Prometheus scrape route (unless its path is ``off``), and
    GET /api/v2/dashboard when the host tells its facts and has its tables, all answering
    errors with Omni's envelope; none of them with ``OMNI_DASHBOARD_PROVIDERS=none``."""
    if dashboard.registry.off:
        return
    stream_schemas.register(api.spec)
    blueprints = [stream_api.build(dashboard)]
    if dashboard.config.metrics_path is not None:
        blueprints.append(metrics_api.build(dashboard))
    if dashboard.facts is None:
        log.warning("host passes no facts to Dashboard: GET /api/v2/dashboard is not served")
    elif not dashboard.lacks(SUMMARY_TABLES):  # warned about at init_app, table by table
        blueprints.append(dashboard_api.build(dashboard))
    for blueprint in blueprints:
        errors.answer_in_envelope(blueprint)
        api.register_blueprint(blueprint)
    websocket = stream_api.register_websocket(dashboard, app, api)
    blueprints += [websocket] if websocket else []
    errors.answer_routing_errors(app, {blueprint.name for blueprint in blueprints})


@hookimpl
def omni_app_started(app, dashboard):
    """Stop start-up when the scrape route's path is another route's too (every route is
    registered by now)."""
    if not dashboard.registry.off and dashboard.config.metrics_path is not None:
        metrics_api.check_not_shadowing(app, dashboard.config.metrics_path)


@hookimpl
def omni_app_stopping(app, dashboard):
    """Stop this process's NATS bridge."""
    dashboard.live.stop()
