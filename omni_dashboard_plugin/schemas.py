"""marshmallow fields and schemas of what the plugin adds to responses and requests."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from .buckets import GRANULARITIES
from .comparison import COMPARISONS


class OpenSchema(Schema):
    """Base of the plugin's response schemas (documented without additionalProperties)."""

    class Meta:
        unknown = EXCLUDE


def _known_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError(
            "Not an IANA time zone; use a name such as 'UTC' or 'Europe/Berlin'."
        ) from exc


def timezone_argument() -> fields.String:
    """The ``timezone`` query argument: an IANA name, validated."""
    return fields.String(
        validate=[validate.Length(1, 64), _known_zone],
        metadata={
            "description": "IANA time zone of the buckets; default OMNI_DASHBOARD_TIMEZONE (UTC)",
            "example": "Europe/Berlin",
        },
    )


def granularity_argument() -> fields.String:
    """The ``granularity`` query argument."""
    return fields.String(
        validate=validate.OneOf(GRANULARITIES),
        metadata={
            "description": "Bucket size. When omitted: hourly if the window fits under the "
            "bucket cap, daily otherwise (see timelineGranularity)."
        },
    )


class Prebuilt(fields.List):
    """A list its provider builds as JSON-ready dicts: documented by its items' schema,
    sent as built (a timeline holds up to thousands of buckets)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class TimelineBucketSchema(OpenSchema):
    bucket = fields.String(
        required=True,
        metadata={
            "description": "Start of the bucket, ISO 8601 with its UTC offset",
            "example": "2026-03-08T00:00:00-05:00",
        },
    )
    count = fields.Integer(required=True)
    failed = fields.Integer(
        required=True, metadata={"description": "Events of the bucket with status 'failed'"}
    )


class ByDirectionSchema(OpenSchema):
    inbound = fields.Integer(required=True)
    outbound = fields.Integer(required=True)


def timeline_fields() -> dict:
    """Fields of the timeline provider."""
    return {
        "timeline": Prebuilt(
            fields.Nested(TimelineBucketSchema),
            required=True,
            metadata={"description": "Zero-filled event counts per bucket of the window"},
        ),
        "timelineGranularity": fields.String(required=True, validate=validate.OneOf(GRANULARITIES)),
        "timelineTimezone": fields.String(
            required=True, metadata={"description": "IANA zone the buckets are aligned to"}
        ),
    }


def breakdown_fields(window: str = "of the window") -> dict:
    """Fields of the breakdowns provider (events ``window`` per channel and direction)."""
    return {
        "byChannel": fields.Dict(
            keys=fields.String(),
            values=fields.Integer(),
            required=True,
            metadata={"description": f"Events {window} per channel"},
        ),
        "byDirection": fields.Nested(
            ByDirectionSchema,
            required=True,
            metadata={"description": f"Events {window} per direction"},
        ),
    }


def rate_fields() -> dict:
    """Fields of the rates provider."""
    return {
        "eventsLastHour": fields.Integer(
            required=True, metadata={"description": "Events with receivedAt >= now - 1 h"}
        ),
        "eventsPerHour": fields.Float(
            required=True, metadata={"description": "eventsLast24h / 24"}
        ),
        "eventsPerMinute": fields.Float(
            required=True, metadata={"description": "eventsLastHour / 60"}
        ),
    }


def automation_fields() -> dict:
    """Fields of the automations provider."""
    return {
        "totalExecutions": fields.Integer(
            required=True,
            metadata={"description": "Logs with status success or failed ('skipped' did not run)"},
        ),
        "skipped": fields.Integer(
            required=True, metadata={"description": "Logs whose conditions did not match"}
        ),
        "totalActions": fields.Integer(
            required=True,
            metadata={"description": "Entries of actions_executed over every log (null: 0)"},
        ),
        "successRate": fields.Float(
            required=True,
            metadata={"description": "success / totalExecutions * 100 (0 when none)"},
        ),
        "avgExecutionTimeMs": fields.Integer(
            required=True,
            metadata={
                "description": "Mean execution_time_ms of executions, rounded half up (0 when none)"
            },
        ),
        "recentFailures": fields.Integer(
            required=True,
            metadata={"description": "Failed logs with createdAt >= now - 24 h"},
        ),
    }


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Must not contain a NUL character (U+0000).")


def channel_argument() -> fields.String:
    """The ``channel`` query argument: one channel's events only."""
    return fields.String(
        validate=[validate.Length(1, 50), _no_nul],
        metadata={
            "description": "Only events of this channel (an unknown channel has none)",
            "example": "whatsapp-baileys",
        },
    )


def compare_argument(window: str) -> fields.String:
    """The ``compare`` query argument."""
    return fields.String(
        validate=validate.OneOf(COMPARISONS),
        metadata={
            "description": f"Add the same numbers for {window}: previous_period (the window "
            "of the same length that ends where it starts) or previous_week (7 days earlier)"
        },
    )


class ComparisonSchema(OpenSchema):
    """The request's numbers for the comparison window (same filters)."""

    since = fields.String(
        required=True, metadata={"description": "Start of the comparison window (inclusive)"}
    )
    until = fields.String(
        required=True,
        metadata={
            "description": "End of the comparison window: exclusive for previous_period "
            "(its start is the window's), inclusive for previous_week"
        },
    )
    totalMessages = fields.Integer(required=True)
    successfulMessages = fields.Integer(required=True)
    failedMessages = fields.Integer(required=True)
    successRate = fields.Float(required=True, metadata={"description": "percentage, 0-100"})
    avgProcessingTimeMs = fields.Integer(required=True, allow_none=True)
    byChannel = breakdown_fields()["byChannel"]
    byDirection = breakdown_fields()["byDirection"]
    timeline = Prebuilt(
        fields.Nested(TimelineBucketSchema),
        required=True,
        metadata={
            "description": "As many buckets as the window's timeline; bucket i holds the "
            "comparison events whose instant, moved by the comparison's shift (rounded to 15 "
            "minutes), lies in the window's bucket i (the first or last bucket when in none); "
            "labelled with the bucket's start moved back by that shift"
        },
    )


def comparison_fields() -> dict:
    """Fields of the comparison provider (present only when ``compare`` is given)."""
    return {
        "comparison": fields.Nested(
            ComparisonSchema,
            metadata={"description": "Present when compare is given"},
        )
    }
