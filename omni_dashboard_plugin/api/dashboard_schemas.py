"""The schema of GET /api/v2/dashboard, built for the enabled providers."""

from marshmallow import fields, validate

from ..facts import STATUSES
from ..schemas import (
    OpenSchema,
    breakdown_fields,
    channel_argument,
    compare_argument,
    timeline_fields,
    timezone_argument,
)


def _schema(name: str, members: dict) -> type[OpenSchema]:
    return type(name, (OpenSchema,), members)


def summary_schema(enabled) -> type[OpenSchema]:
    """DashboardSummary with exactly the parts the enabled providers contribute."""
    count = fields.Integer
    events = {
        "total": count(required=True, metadata={"description": "totalEvents of event-ops"}),
        "last24h": count(required=True),
        "failed24h": count(
            required=True, metadata={"description": "Events of the last 24 h with status failed"}
        ),
        "failureRate": fields.Float(required=True, metadata={"description": "percentage"}),
    }
    previous = {"last24h": count(required=True), "failed24h": count(required=True)}
    if "rates" in enabled:
        rates = {
            "lastHour": count(required=True),
            "perHour": fields.Float(required=True),
            "perMinute": fields.Float(required=True),
        }
        events |= rates
        previous |= rates
    if "timeline" in enabled:
        events["timeline"] = timeline_fields()["timeline"]
        previous["timeline"] = timeline_fields()["timeline"]
    if "breakdowns" in enabled:
        events |= breakdown_fields("of the last 24 h")
    if "comparison" in enabled:
        events["previous"] = fields.Nested(
            _schema("DashboardPreviousSchema", previous),
            metadata={
                "description": "With compare: the same numbers for the 24 h before the last "
                "24 h and the hour before the last hour (previous_period), or for both 7 days "
                "earlier (previous_week); the timeline's buckets match events.timeline's"
            },
        )
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
                        validate=validate.OneOf(STATUSES),
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


def arguments_schema(enabled) -> type[OpenSchema]:
    """The filters; ``timezone`` when the timeline is enabled, ``compare`` when the
    comparison is."""
    members = {
        "instanceId": fields.UUID(
            metadata={"description": "Every events number of this instance's events only"}
        ),
        "channel": channel_argument(),
    }
    if "timeline" in enabled:
        members["timezone"] = timezone_argument()
    if "comparison" in enabled:
        members["compare"] = compare_argument("the last 24 h and the last hour")
    return _schema("DashboardQuerySchema", members)
