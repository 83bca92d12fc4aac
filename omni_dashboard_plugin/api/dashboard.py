"""GET /api/v2/dashboard: the whole dashboard in one request, ETag-aware and cached."""

import hashlib
import json
import logging

from flask import Response, jsonify, request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from ..cache import TtlCache
from ..facts import HostFacts
from ..handle import DashboardHandle
from ..summary import compute_summary
from .dashboard_schemas import arguments_schema, summary_schema


class ConditionalHeadersSchema(Schema):
    """The conditional-request header the dashboard honours."""

    if_none_match = fields.String(
        data_key="If-None-Match",
        metadata={"description": "ETag of a previous answer; 304 when the summary is unchanged"},
    )


ETAG_HEADER = {
    "ETag": {
        "description": "Weak tag of this summary's data (system.uptime and system.dbLatency, "
        "which change on every call, are not part of it)",
        "schema": {"type": "string"},
    }
}
log = logging.getLogger(__name__)
# Measurements of the moment, not data: an unchanged system keeps its tag without them.
UNTAGGED = {"system": ("uptime", "dbLatency")}


def data_tag(data: dict) -> str:
    """The weak validator of a summary: a hash of everything but UNTAGGED."""
    tagged = {
        key: (
            {k: v for k, v in value.items() if k not in UNTAGGED[key]}
            if key in UNTAGGED and isinstance(value, dict)
            else value
        )
        for key, value in data.items()
    }
    text = json.dumps(tagged, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def host_facts(facts) -> HostFacts:
    """What the host's ``facts`` callable returns; when it raises, or returns anything but
    a :class:`HostFacts`, the cause is logged and the client gets a 503 envelope."""
    try:
        found = facts()
    except Exception:
        log.exception("GET /api/v2/dashboard: the host's facts callable raised")
        abort(503, message="The host's health facts are unavailable; retry later.")
    if not isinstance(found, HostFacts):
        log.error(
            "GET /api/v2/dashboard: the host's facts callable returned %s, not a HostFacts "
            "(docs/host-integration.md)",
            type(found).__name__,
        )
        abort(503, message="The host's health facts are unavailable; retry later.")
    return found


def build(dashboard: DashboardHandle) -> Blueprint:
    """The dashboard blueprint for the enabled providers (of a host that gives its facts)."""
    if dashboard.facts is None:
        raise ValueError("GET /api/v2/dashboard needs the host's facts (Dashboard(facts=...))")
    blp = Blueprint(
        "dashboard",
        __name__,
        url_prefix="/api/v2",
        description="The whole operations dashboard in one request.",
    )
    cache = TtlCache(dashboard.config.cache_seconds)
    parts = dashboard.registry.dashboard_parts()
    schema = summary_schema(parts)()
    args_schema = arguments_schema(parts)

    def tagged(args):
        data = schema.dump(compute_summary(dashboard, host_facts(dashboard.facts), args))
        return data, data_tag(data)

    @blp.arguments(args_schema, location="query")
    def summary(_headers, args):  # the outer (headers) arguments come first
        key = (
            dashboard.cache_scope(),
            tuple(sorted((name, str(value)) for name, value in args.items())),
        )
        data, etag = cache.get(key, lambda: tagged(args))
        headers = {"ETag": f'W/"{etag}"', "Cache-Control": "private, no-cache"}
        if request.if_none_match.contains_weak(etag):
            return Response(status=304, headers=headers)
        # The summary is dumped already (tagged): a Response spares flask-smorest's
        # response wrapper dumping it with the same schema again.
        return jsonify(data), 200, headers

    summary.__doc__ = """Instances, events, dead letters, automations and system in one response.

    Every number equals what the individual endpoints return with default arguments at the
    same instant, read from one snapshot. instanceId and channel narrow every events number
    (instances, dead letters, automations and system stay whole); compare adds
    events.previous. Send the ETag back in If-None-Match to get 304
    when nothing changed; answers are cached per caller (every credential the request
    carries, unless the host scopes them) and arguments for OMNI_DASHBOARD_CACHE_SECONDS.
    """
    decorated = blp.arguments(ConditionalHeadersSchema, location="headers")(
        blp.alt_response(304, description="Not modified: the If-None-Match tag is current")(
            blp.response(200, type(schema), headers=ETAG_HEADER)(summary)
        )
    )
    blp.route("/dashboard", endpoint="summary")(decorated)
    return blp
