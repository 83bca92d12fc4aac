"""The team's tables: the columns docs/host-integration.md lists, integer keys of its own."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

metadata = MetaData()

instances = Table(
    "instances",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", String(50), nullable=False),
    Column("is_active", Boolean, nullable=False, default=False),
)

omni_events = Table(
    "omni_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False, index=True),
    Column("channel", String(50), nullable=False),
    Column("instance_id", Uuid, ForeignKey("instances.id", ondelete="SET NULL")),
    Column("direction", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("content_type", String(20)),
    Column("error_stage", String(50)),
    Column("processing_time_ms", Integer),
    Column("agent_latency_ms", Integer),
)

dead_letter_events = Table(
    "dead_letter_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status", String(20), nullable=False),
)

event_payloads = Table(
    "event_payloads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payload_size_compressed", Integer),
    Column("timestamp", DateTime, nullable=False),
    Column("deleted_at", DateTime),
)

automations = Table("automations", metadata, Column("id", Uuid, primary_key=True))

automation_logs = Table(
    "automation_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("automation_id", Uuid, ForeignKey("automations.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("actions_executed", JSON),
    Column("execution_time_ms", Integer),
    Column("created_at", DateTime, nullable=False),
)
