"""GET /api/v2/events/analytics."""

from flask_smorest import Blueprint

from .. import queries
from .common import host, query_arguments

ENDPOINT = "events.analytics"


def build(dashboard) -> Blueprint:
    """The events blueprint."""
    blp = Blueprint("events", __name__, url_prefix="/api/v2/events")

    @blp.route("/analytics")
    @blp.response(200, dashboard.response_schema(ENDPOINT))
    @query_arguments(blp, dashboard.arguments_schema(ENDPOINT))
    def analytics(args):
        """Event analytics within a window (default: the last 24 hours)."""
        state = host()
        now = state.clock()
        since, until, instance_id = queries.analytics_window(args, now)
        with state.engine.connect() as conn:
            base = dashboard.base(
                ENDPOINT,
                lambda: queries.event_analytics(conn, since, until, instance_id),
                connection=conn,
                now=now,
                args=args,
            )
            return dashboard.extend(ENDPOINT, base, connection=conn, args=args, now=now)

    return blp
