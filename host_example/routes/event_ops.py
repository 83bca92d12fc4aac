"""GET /api/v2/event-ops/metrics."""

from flask_smorest import Blueprint
from marshmallow import fields

from .. import queries
from ..schemas import Schema
from .common import host, query_arguments

ENDPOINT = "event-ops.metrics"


def build(dashboard) -> Blueprint:
    """The event-ops blueprint, with the response schema the enabled providers extend."""
    blp = Blueprint("event-ops", __name__, url_prefix="/api/v2/event-ops")

    class EventMetricsEnvelopeSchema(Schema):
        data = fields.Nested(dashboard.response_schema(ENDPOINT), required=True)

    @blp.route("/metrics")
    @blp.response(200, EventMetricsEnvelopeSchema)
    @query_arguments(blp, dashboard.arguments_schema(ENDPOINT))
    def metrics(args):
        """All-time event metrics."""
        state = host()
        now = state.clock()
        with state.engine.connect() as conn:
            base = dashboard.base(
                ENDPOINT, lambda: queries.event_metrics(conn, now), connection=conn, now=now
            )
            data = dashboard.extend(ENDPOINT, base, connection=conn, args=args, now=now)
        return {"data": data}

    return blp
