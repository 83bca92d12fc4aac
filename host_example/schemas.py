"""marshmallow schemas of the host's pre-enhancement requests and responses."""

from datetime import UTC

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema
from marshmallow import Schema as _Schema

from .tables import AUTOMATION_LOG_STATUSES


class Schema(_Schema):
    """Base of the host's schemas: open to added fields (no additionalProperties: false)."""

    class Meta:
        unknown = EXCLUDE


Count = fields.Integer
Counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class UtcDateTimeArg(fields.DateTime):
    """An ISO 8601 query argument, normalized to naive UTC (naive input is taken as UTC)."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is not None:
            try:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:
                raise ValidationError(
                    "Not a representable instant once converted to UTC."
                ) from None
        return parsed


class IsoUtc(fields.DateTime):
    """A naive-UTC timestamp rendered as JavaScript does: ``2026-02-07T12:00:00.000Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.isoformat(timespec="milliseconds") + "Z"


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True)
    details = fields.Dict(
        metadata={"description": "Per-field messages, for VALIDATION_ERROR: {field: [message]}"}
    )


class ErrorSchema(Schema):
    """Omni's error envelope."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class EventMetricsSchema(Schema):
    """All-time event statistics (GET /event-ops/metrics)."""

    totalEvents = Count(required=True)
    eventsLast24h = Count(required=True)
    eventsLast7d = Count(required=True)
    completed = Count(required=True)
    failed = Count(required=True)
    pending = Count(required=True, metadata={"description": "status 'received' or 'processing'"})
    avgProcessingTimeMs = fields.Integer(required=True, allow_none=True)
    avgAgentLatencyMs = fields.Integer(required=True, allow_none=True)
    p95ProcessingTimeMs = fields.Integer(required=True, allow_none=True)
    failureRate = fields.Float(required=True, metadata={"description": "percentage, 0-100"})
    errorsByStage = Counts
    deadLettersPending = Count(required=True)
    deadLettersResolved = Count(required=True)
    payloadsStored = Count(required=True)
    storageSizeBytes = Count(required=True)


class AnalyticsQuerySchema(Schema):
    """The window of GET /events/analytics."""

    since = UtcDateTimeArg(metadata={"description": "ISO 8601; default now - 24 h"})
    until = UtcDateTimeArg(metadata={"description": "ISO 8601; default: no upper bound"})
    instanceId = fields.UUID()
    allTime = fields.Boolean(load_default=False, metadata={"description": "no default lower bound"})

    @validates_schema
    def _since_before_until(self, data, **kwargs):
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            raise ValidationError("must not be after until", field_name="since")


class EventAnalyticsSchema(Schema):
    """Event analytics within a window (GET /events/analytics)."""

    totalMessages = Count(required=True)
    successfulMessages = Count(required=True)
    failedMessages = Count(required=True)
    successRate = fields.Float(required=True, metadata={"description": "percentage, 0-100"})
    avgProcessingTimeMs = fields.Integer(required=True, allow_none=True)
    avgAgentTimeMs = fields.Integer(required=True, allow_none=True)
    messageTypes = Counts
    errorStages = Counts
    instances = Counts


class DeadLetterStatsSchema(Schema):
    total = Count(required=True)
    pending = Count(required=True)
    retrying = Count(required=True)
    resolved = Count(required=True)
    abandoned = Count(required=True)
    byEventType = Counts


class InstanceQueueSchema(Schema):
    instanceId = fields.String(required=True)
    activeCount = Count(required=True)
    pendingCount = Count(required=True)


class AutomationMetricsSchema(Schema):
    """Automation engine state (GET /automation-metrics)."""

    running = fields.Boolean(required=True)
    message = fields.String(metadata={"description": "present when the engine is not running"})
    instanceQueues = fields.List(fields.Nested(InstanceQueueSchema))


class AutomationLogsQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    cursor = fields.String(validate=validate.Length(1, 200))
    status = fields.String(validate=validate.OneOf(AUTOMATION_LOG_STATUSES))
    automationId = fields.UUID()


class ActionResultSchema(Schema):
    action = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("success", "failed")))
    result = fields.Raw()
    error = fields.String()
    durationMs = fields.Integer(required=True)


class StoredList(fields.List):
    """A JSON column documented as an array: any other stored JSON is sent as null."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(value, attr, obj, **kwargs) if isinstance(value, list) else None


class AutomationLogSchema(Schema):
    id = fields.UUID(required=True)
    automationId = fields.UUID(required=True, allow_none=True, attribute="automation_id")
    eventId = fields.String(required=True, attribute="event_id")
    status = fields.String(required=True, validate=validate.OneOf(AUTOMATION_LOG_STATUSES))
    conditionsMatched = fields.Boolean(required=True, attribute="conditions_matched")
    actionsExecuted = StoredList(
        fields.Nested(ActionResultSchema),
        required=True,
        allow_none=True,
        attribute="actions_executed",
        metadata={"description": "null when none is stored, or what is stored is not an array"},
    )
    error = fields.String(required=True, allow_none=True)
    executionTimeMs = fields.Integer(required=True, allow_none=True, attribute="execution_time_ms")
    createdAt = IsoUtc(required=True, attribute="created_at")


class PageMetaSchema(Schema):
    hasMore = fields.Boolean(required=True)
    cursor = fields.String(required=True, allow_none=True)


class AutomationLogsSchema(Schema):
    items = fields.List(fields.Nested(AutomationLogSchema), required=True)
    meta = fields.Nested(PageMetaSchema, required=True)


class DatabaseCheckSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ok", "error")))
    latency = fields.Integer(required=True, allow_none=True, metadata={"description": "ms"})


class NatsDetailsSchema(Schema):
    connected = fields.Boolean(required=True)


class NatsCheckSchema(Schema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(("ok", "error", "disabled")),
        metadata={"description": "'disabled' when OMNI_NATS_URL is unset"},
    )
    latency = fields.Integer(
        allow_none=True,
        metadata={"description": "ms of the last PING round trip; present when checked"},
    )
    details = fields.Nested(NatsDetailsSchema, required=True)


class ChecksSchema(Schema):
    database = fields.Nested(DatabaseCheckSchema, required=True)
    nats = fields.Nested(NatsCheckSchema, required=True)


class InstancesSummarySchema(Schema):
    total = Count(required=True)
    connected = Count(required=True)
    byChannel = Counts


class HealthResponseSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("healthy", "degraded")))
    version = fields.String(required=True)
    uptime = fields.Integer(required=True, metadata={"description": "seconds"})
    timestamp = IsoUtc(required=True)
    checks = fields.Nested(ChecksSchema, required=True)
    instances = fields.Nested(InstancesSummarySchema)
