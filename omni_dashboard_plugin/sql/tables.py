"""The plugin's own view of Omni's tables: only the columns it reads.

These definitions never create or alter anything; the host owns its tables.
"""

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

omni_events = Table(
    "omni_events",
    metadata,
    Column("channel", String(50)),
    Column("instance_id", Uuid),
    Column("direction", String(10)),
    Column("content_type", String(20)),
    Column("status", String(20)),
    Column("error_stage", String(50)),
    Column("received_at", DateTime),
    Column("processing_time_ms", Integer),
    Column("agent_latency_ms", Integer),
)

automation_logs = Table(
    "automation_logs",
    metadata,
    Column("automation_id", Uuid),
    Column("status", String(20)),
    Column("actions_executed", JSON().with_variant(JSONB(), "postgresql")),
    Column("execution_time_ms", Integer),
    Column("created_at", DateTime),
)

dead_letter_events = Table(
    "dead_letter_events",
    metadata,
    Column("status", String(20)),
)

event_payloads = Table(
    "event_payloads",
    metadata,
    Column("payload_size_compressed", Integer),
    Column("timestamp", DateTime),
    Column("deleted_at", DateTime),
)

automations = Table(
    "automations",
    metadata,
    Column("id", Uuid, primary_key=True),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", String(50)),
    Column("is_active", Boolean),
)
