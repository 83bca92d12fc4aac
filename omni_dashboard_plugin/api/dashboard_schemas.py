"""The schema of GET /api/v2/dashboard, built for the enabled providers."""

from marshmallow import fields, validate

from ..schemas import OpenSchema, breakdown_fields, timeline_fields, timezone_argument


def _schema(name: str, members: dict) -> type[OpenSchema]:
    return type(name, (OpenSchema,), members)


def summary_schema(enabled) -> type[OpenSchema]:
    """DashboardSummary with exactly the parts the enabled providers contribute."""
    count = fields.Integer
    events = {
        "total": count(required=True, metadata={"description": "totalEvents of event-ops"}),
        "last24h": count(required=True),
        "failureRate": fields.Float(required=True, metadata={"description": "percentage"}),
    }
    if "rates" in enabled:
        events |= {
            "lastHour": count(required=True),
            "perHour": fields.Float(required=True),
            "perMinute": fields.Float(required=True),
        }
    if "timeline" in enabled:
        events["timeline"] = timeline_fields()["timeline"]
    if "breakdowns" in enabled:
        events |= breakdown_fields("of the last 24 h")
    automations = {"running": fields.Boolean(required=True)}
    if "automations" in enabled:
        automations |= {
            "totalExecutions": count(required=True),
            "successRate": fields.Float(required=True),
        }
    members = {
        "instances": fields.Nested(
            _schema(
                "DashboardInstancesSchema",
                {
                    "total": count(required=True),
                    "connected": count(required=True),
                    "byChannel": fields.Dict(
                        keys=fields.String(), values=fields.Integer(), required=True
                    ),
                },
            ),
            required=True,
        ),
        "events": fields.Nested(_schema("DashboardEventsSchema", events), required=True),
        "deadLetters": fields.Nested(
            _schema(
                "DashboardDeadLettersSchema",
                {"pending": count(required=True), "total": count(required=True)},
            ),
            required=True,
        ),
        "automations": fields.Nested(
            _schema("DashboardAutomationsSchema", automations), required=True
        ),
        "system": fields.Nested(
            _schema(
                "DashboardSystemSchema",
                {
                    "status": fields.String(
                        required=True,
                        validate=validate.OneOf(("healthy", "degraded", "unhealthy")),
                    ),
                    "uptime": count(required=True, metadata={"description": "seconds"}),
                    "dbLatency": count(
                        required=True, allow_none=True, metadata={"description": "ms"}
                    ),
                    "natsConnected": fields.Boolean(required=True),
                },
            ),
            required=True,
        ),
    }
    return _schema("DashboardSummarySchema", members)


def arguments_schema(enabled) -> type[OpenSchema] | None:
    """``timezone`` when the timeline is enabled; otherwise no arguments."""
    if "timeline" not in enabled:
        return None
    return _schema("DashboardQuerySchema", {"timezone": timezone_argument()})
