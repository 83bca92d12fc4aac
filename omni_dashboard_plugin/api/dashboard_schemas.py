"""The schema of GET /api/v2/dashboard, built from what the enabled providers declare."""

from collections.abc import Iterable, Mapping

from marshmallow import fields, validate

from ..facts import STATUSES
from ..provider import DashboardPart, Section
from ..schemas import OpenSchema, channel_argument

# The OpenAPI component of each section of the summary a provider may add fields to.
COMPONENTS = {"events": "DashboardEventsSchema", "automations": "DashboardAutomationsSchema"}


def _schema(name: str, members: Mapping) -> type[OpenSchema]:
    return type(name, (OpenSchema,), dict(members))


def _core() -> dict[str, dict]:
    """The fields of the sections the summary always holds."""
    count = fields.Integer
    return {
        "events": {
            "total": count(required=True, metadata={"description": "totalEvents of event-ops"}),
            "last24h": count(required=True),
            "failed24h": count(
                required=True,
                metadata={"description": "Events of the last 24 h with status failed"},
            ),
            "failureRate": fields.Float(required=True, metadata={"description": "percentage"}),
        },
        "automations": {"running": fields.Boolean(required=True)},
    }


def _sections(parts: Iterable[DashboardPart]) -> dict[str, dict]:
    """Every section's fields, a :class:`Section` field resolved to its nested schema."""
    sections = _core()
    for part in parts:
        for section, declared in part.fields.items():
            sections.setdefault(section, {}).update(declared)
    for declared in sections.values():
        for name, field in declared.items():
            if isinstance(field, Section):
                declared[name] = fields.Nested(
                    _schema(field.component, sections.get(field.name, {})),
                    metadata=dict(field.metadata),
                )
    return sections


def summary_schema(parts: Iterable[DashboardPart]) -> type[OpenSchema]:
    """DashboardSummary with exactly the fields the enabled providers contribute."""
    sections = _sections(parts)
    count = fields.Integer
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
        "events": fields.Nested(_schema(COMPONENTS["events"], sections["events"]), required=True),
        "deadLetters": fields.Nested(
            _schema(
                "DashboardDeadLettersSchema",
                {"pending": count(required=True), "total": count(required=True)},
            ),
            required=True,
        ),
        "automations": fields.Nested(
            _schema(COMPONENTS["automations"], sections["automations"]), required=True
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


def arguments_schema(parts: Iterable[DashboardPart]) -> type[OpenSchema]:
    """The filters, and the enabled providers' arguments."""
    members = {
        "instanceId": fields.UUID(
            metadata={"description": "Every events number of this instance's events only"}
        ),
        "channel": channel_argument(),
    }
    for part in parts:
        members |= part.arguments
    return _schema("DashboardQuerySchema", members)
