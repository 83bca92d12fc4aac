"""The team's routes, as flask-smorest MethodViews; two of them extensible."""

import time

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from . import queries
from .schemas import Instance, Status

METRICS = "event-ops.metrics"
ANALYTICS = "events.analytics"


def build(dashboard, engine) -> Blueprint:
    """The team's blueprint; ``dashboard`` gives the schemas and merges the providers'."""
    blp = Blueprint("team", __name__, description="The team's operations API.")

    @blp.route("/event-ops/metrics")
    class Metrics(MethodView):
        @blp.response(200, dashboard.response_schema(METRICS))
        def get(self):
            """All-time event numbers."""
            now = dashboard.clock()
            with engine.connect() as conn:
                base = dashboard.base(
                    METRICS, lambda: queries.metrics(conn, now), connection=conn, now=now
                )
                return dashboard.extend(METRICS, base, connection=conn, args={}, now=now)

    @blp.route("/events/analytics")
    class Analytics(MethodView):
        @blp.arguments(dashboard.arguments_schema(ANALYTICS), location="query")
        @blp.response(200, dashboard.response_schema(ANALYTICS))
        def get(self, args):
            """Event numbers of a window (default: the last 24 hours)."""
            now = dashboard.clock()
            with engine.connect() as conn:
                base = dashboard.base(
                    ANALYTICS,
                    lambda: queries.analytics(conn, args, now),
                    connection=conn,
                    now=now,
                    args=args,
                )
                return dashboard.extend(ANALYTICS, base, connection=conn, args=args, now=now)

    @blp.route("/instances")
    class Instances(MethodView):
        @blp.response(200, Instance(many=True))
        def get(self):
            """Every channel instance."""
            with engine.connect() as conn:
                return queries.instance_list(conn)

    @blp.route("/status")
    class Health(MethodView):
        @blp.response(200, Status)
        def get(self):
            """Whether the database answers (no token needed)."""
            return {"status": "healthy" if ping(engine) is not None else "degraded"}

    return blp


def ping(engine) -> float | None:
    """Seconds of one database round trip, or None when it fails."""
    began = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "down" to a health check
        return None
    return time.monotonic() - began
