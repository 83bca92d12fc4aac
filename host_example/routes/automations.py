"""GET /api/v2/automation-metrics and GET /api/v2/automation-logs."""

from flask_smorest import Blueprint, abort

from .. import queries
from ..schemas import AutomationLogsQuerySchema, AutomationLogsSchema
from .common import host, query_arguments

ENDPOINT = "automation-metrics"


def build(dashboard) -> Blueprint:
    """The automations blueprint."""
    blp = Blueprint("automations", __name__, url_prefix="/api/v2")

    @blp.route("/automation-metrics")
    @blp.response(200, dashboard.response_schema(ENDPOINT))
    @query_arguments(blp, dashboard.arguments_schema(ENDPOINT))
    def automation_metrics(args):
        """Automation engine state."""
        state = host()
        base = state.automation_engine.metrics()
        if not dashboard.providers_for(ENDPOINT):
            return base
        now = state.clock()
        with state.engine.connect() as conn:
            return dashboard.extend(ENDPOINT, base, connection=conn, args=args, now=now)

    @blp.route("/automation-logs")
    @blp.response(200, AutomationLogsSchema)
    @blp.arguments(AutomationLogsQuerySchema, location="query")
    def automation_logs(args):
        """Automation logs, newest first, with cursor pagination."""
        with host().engine.connect() as conn:
            try:
                items, meta = queries.automation_logs_page(
                    conn,
                    args["limit"],
                    cursor=args.get("cursor"),
                    status=args.get("status"),
                    automation_id=args.get("automationId"),
                )
            except queries.BadCursor:
                abort(422, errors={"query": {"cursor": ["Not a cursor returned by this API."]}})
        return {"items": items, "meta": meta}

    return blp
