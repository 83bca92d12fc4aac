"""The team's payloads: its own metrics (a field Omni lacks), Omni's analytics."""

from marshmallow import Schema, fields


class Metrics(Schema):
    """All-time numbers the team watches."""

    totalEvents = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    failureRate = fields.Float(required=True)
    myTeamNote = fields.String(required=True, metadata={"description": "the busiest channel"})


class AnalyticsArgs(Schema):
    """The window: both ends included; ``since`` defaults to 24 hours before now."""

    since = fields.DateTime()
    until = fields.DateTime()
    instanceId = fields.UUID()


class Analytics(Schema):
    """Omni's /events/analytics payload (docs/host-integration.md lists its meaning)."""

    totalMessages = fields.Integer(required=True)
    successfulMessages = fields.Integer(required=True)
    failedMessages = fields.Integer(required=True)
    successRate = fields.Float(required=True)
    avgProcessingTimeMs = fields.Integer(required=True, allow_none=True)
    avgAgentTimeMs = fields.Integer(required=True, allow_none=True)
    messageTypes = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    errorStages = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    instances = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class Instance(Schema):
    """One channel instance."""

    id = fields.UUID(required=True)
    channel = fields.String(required=True)
    isActive = fields.Boolean(required=True, attribute="is_active")


class Status(Schema):
    """Whether the API can reach its database."""

    status = fields.String(required=True)
