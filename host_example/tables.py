"""Omni's tables as SQLAlchemy Core definitions (docs/reference-host.md).

Enumerations are varchar, as in Omni; timestamps are naive and hold UTC.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

CHANNELS = ("whatsapp-baileys", "whatsapp-cloud", "discord", "slack", "telegram")
EVENT_TYPES = (
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "media.received",
    "media.processed",
    "identity.created",
    "identity.linked",
    "identity.unlinked",
    "instance.connected",
    "instance.disconnected",
    "access.allowed",
    "access.denied",
)
CONTENT_TYPES = (
    "text",
    "audio",
    "image",
    "video",
    "document",
    "sticker",
    "contact",
    "location",
    "reaction",
)
EVENT_STATUSES = ("received", "processing", "completed", "failed")
DIRECTIONS = ("inbound", "outbound")
AUTOMATION_LOG_STATUSES = ("success", "failed", "skipped")
DEAD_LETTER_STATUSES = ("pending", "retrying", "resolved", "abandoned")
PAYLOAD_STAGES = ("webhook_raw", "agent_request", "agent_response", "channel_send", "error")

Json = JSON().with_variant(JSONB(), "postgresql")
NOW = text("CURRENT_TIMESTAMP")

metadata = MetaData()

instances = Table(
    "instances",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("channel", String(50), nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("false")),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    Column("profile_name", String(255)),
    Column("last_message_at", DateTime),
    Column("created_at", DateTime, nullable=False, server_default=NOW),
    Column("updated_at", DateTime, nullable=False, server_default=NOW),
)

omni_events = Table(
    "omni_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("external_id", String(255), index=True),
    # NULL allowed (Omni's is NOT NULL): a host's table may hold NULL, the tests write it.
    Column("channel", String(50), index=True),
    Column("instance_id", Uuid, ForeignKey("instances.id", ondelete="SET NULL"), index=True),
    Column("person_id", Uuid, index=True),
    Column("platform_identity_id", Uuid),
    Column("event_type", String(50), nullable=False, index=True),
    Column("direction", String(10), nullable=False, server_default="inbound"),
    Column("content_type", String(20)),
    Column("text_content", Text),
    Column("transcription", Text),
    Column("image_description", Text),
    Column("document_extraction", Text),
    Column("media_id", String(255)),
    Column("media_mime_type", String(100)),
    Column("media_size", Integer),
    Column("media_duration", Integer),
    Column("media_url", Text),
    Column("chat_id", String(255), index=True),
    Column("status", String(20), nullable=False, server_default="received", index=True),
    Column("error_message", Text),
    Column("error_stage", String(50)),
    Column("received_at", DateTime, nullable=False, server_default=NOW, index=True),
    Column("processed_at", DateTime),
    Column("delivered_at", DateTime),
    Column("read_at", DateTime),
    Column("processing_time_ms", Integer),
    Column("agent_latency_ms", Integer),
    Column("total_latency_ms", Integer),
    Column("raw_payload", Json),
    Column("metadata", Json),
    Column("created_at", DateTime, nullable=False, server_default=NOW),
)

automations = Table(
    "automations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime, nullable=False, server_default=NOW),
)

automation_logs = Table(
    "automation_logs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "automation_id",
        Uuid,
        ForeignKey("automations.id", ondelete="CASCADE"),
    ),  # NULL allowed (Omni's is NOT NULL), as for omni_events.channel
    Column("event_id", String(36), nullable=False),
    Column("status", String(20), nullable=False),
    Column("conditions_matched", Boolean, nullable=False),
    Column("actions_executed", Json),
    Column("error", Text),
    Column("execution_time_ms", Integer),
    Column("created_at", DateTime, nullable=False, server_default=NOW),
    Index("automation_logs_created_at_id_idx", "created_at", "id"),
)

dead_letter_events = Table(
    "dead_letter_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_id", String(36)),
    Column("event_type", String(100)),
    Column("subject", String(255)),
    Column("payload", Json),
    Column("error", Text),
    Column("stack", Text),
    Column("auto_retry_count", Integer, nullable=False, server_default="0"),
    Column("manual_retry_count", Integer, nullable=False, server_default="0"),
    Column("next_auto_retry_at", DateTime),
    Column("status", String(20), nullable=False, server_default="pending", index=True),
    Column("created_at", DateTime, nullable=False, server_default=NOW),
    Column("last_retry_at", DateTime),
    Column("resolved_at", DateTime),
    Column("resolved_by", String(100)),
)

event_payloads = Table(
    "event_payloads",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(100)),
    Column("stage", String(50), nullable=False),
    Column("payload_compressed", Text),
    Column("payload_size_original", Integer),
    Column("payload_size_compressed", Integer),
    Column("timestamp", DateTime, nullable=False, server_default=NOW, index=True),
    Column("contains_media", Boolean, nullable=False, server_default=text("false")),
    Column("contains_base64", Boolean, nullable=False, server_default=text("false")),
    Column("deleted_at", DateTime, index=True),
    Column("deleted_by", String(100)),
    Column("delete_reason", Text),
)
