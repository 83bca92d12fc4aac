"""Data from the wild: the rows a real Omni database ends up holding and the generated data
never does. Clocks years ahead or behind, backfills from long ago, rows exactly on every
edge a window, slot, hour, day or DST change has, NULL in every nullable column the plugin
reads (an event's channel and a log's automation_id too, which Omni's tables hold NOT NULL
and a host's may not), events of deleted instances, empty, non-ASCII and hostile strings,
JSON that is not the documented array.

:func:`load` writes them into Omni's tables (the reference host's) and returns them as
dicts for the plain-Python oracles.
"""

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, null

from host_example.tables import (
    automation_logs,
    automations,
    dead_letter_events,
    event_payloads,
    instances,
    omni_events,
)

from .conftest import NOW

MICRO = timedelta(microseconds=1)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
FIRST, LAST = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999_999)

# Ahead of the clock: a minute to centuries, up to the last representable instant.
FUTURE = [
    NOW + timedelta(minutes=1),
    NOW + timedelta(minutes=15) - MICRO,
    NOW + timedelta(minutes=15),
    NOW + HOUR,
    NOW + DAY,
    NOW + timedelta(days=41),
    NOW + timedelta(days=986),  # 2.7 years
    NOW + timedelta(days=3 * 365),
    NOW.replace(year=2126),
    NOW.replace(year=2326),
    LAST,
]
# Backfills: the first instant there is, to last year.
ANCIENT = [
    FIRST,
    FIRST + MICRO,
    datetime(999, 12, 31, 23, 59, 59, 999_999),
    datetime(1899, 12, 31, 23, 59, 59),
    datetime(1969, 12, 31, 23, 59, 59, 999_999),  # before the slot grid's epoch
    datetime(1970, 1, 1),
    datetime(2000, 1, 1),
    datetime(2000, 2, 29, 12),
    NOW - timedelta(days=365),
]


def _around(moment):
    return [moment - MICRO, moment, moment + MICRO]


# Exactly on (and a microsecond either side of) every edge the windows and buckets have:
# now, the last hour, 24 h, 48 h, 7 and 8 days (the comparisons), slot, hour and midnight
# edges in UTC and in the zones the tests ask for, and DST changes.
EDGES = [
    *_around(NOW),
    *_around(NOW - HOUR),
    *_around(NOW - 2 * HOUR),
    *_around(NOW - DAY),
    *_around(NOW - 2 * DAY),
    *_around(NOW - 7 * DAY),
    *_around(NOW - 8 * DAY),
    *_around(NOW - 7 * DAY - HOUR),
    *_around(NOW - timedelta(minutes=15)),
    *_around(NOW.replace(hour=0)),  # UTC midnight
    *_around(NOW.replace(hour=4)),  # New York midnight (EDT)
    *_around(datetime(2026, 3, 8, 7)),  # New York springs forward
    *_around(datetime(2025, 11, 2, 6)),  # New York falls back
    *_around(datetime(2025, 10, 26, 1)),  # Berlin falls back
    *_around(datetime(2026, 3, 29, 1)),  # Berlin springs forward (after now)
    *_around(datetime(2025, 10, 4, 15, 30)),  # Lord Howe springs forward half an hour
    *_around(datetime(2026, 3, 9, 18, 15)),  # Kathmandu midnight (+05:45)
    *_around(datetime(2026, 3, 9, 10)),  # Kiritimati midnight (+14:00)
]
# The everyday rows around them, so that the windows are not all edges.
RECENT = [NOW - timedelta(minutes=7 * k + 3) for k in range(60)]

CHANNELS = (
    "whatsapp-baileys",
    "discord",
    "",
    "дискорд",
    "📱",
    "\uff53\uff4c\uff41\uff43\uff4b",  # fullwidth "slack"
    "slack ",
    "e\u0301",
    "עברית",
    "'; DROP TABLE omni_events; --",
    "%",
    "_",
    "\\",
    "a\nb",
    '"quoted"',
    "<script>",
    "x" * 50,
)
INSTANCE_LIVE = uuid.UUID("0e3c9a8e-0000-4000-8000-000000000001")
INSTANCE_GONE = uuid.UUID("0e3c9a8e-0000-4000-8000-000000000002")  # deleted: its rows NULL
INSTANCES = (INSTANCE_LIVE, INSTANCE_GONE, None)
AUTOMATION = uuid.UUID("0e3c9a8e-0000-4000-8000-0000000000a1")
STATUSES = ("received", "processing", "completed", "failed", "", "Failed", "weird")
DIRECTIONS = ("inbound", "outbound", "", "sideways")
CONTENT_TYPES = (None, "text", "", "ðŸ“·", "image/../../x")
STAGES = (None, "agent", "", "\u202eegats", "<b>stage</b>", "a\tb")
LATENCIES = (None, 0, 1, 2**31 - 1, -5, 16 * 2**15, 16 * 2**15 + 1)
# actions_executed as written by Omni, and as it should never be.
ACTIONS = (
    null(),  # SQL NULL (None is written as JSON null)
    None,
    [],
    {"action": "send_message"},
    42,
    [{"action": "send_message", "status": "success", "durationMs": 3}],
    [{"action": "webhook", "status": "failed", "error": "timeout", "durationMs": 30_000}],
)
# GET /automation-logs sends a log's status, an enum of its schema: Omni's values only.
LOG_STATUSES = ("success", "failed", "skipped")
DEAD_STATUSES = ("pending", "retrying", "resolved", "abandoned", "parked", "")
EVENT_TYPES = (None, "message.received", "", "📨", "x" * 100)


@dataclass
class Wild:
    """The rows as written (instance ids of deleted instances already NULL)."""

    events: list
    logs: list
    dead_letters: list
    payloads: list
    instances: list

    @property
    def channels(self) -> list:
        return sorted({e["channel"] for e in self.events if e["channel"] is not None})


def _cycle(pool, k):
    return pool[k % len(pool)]


def _events() -> list:
    moments = FUTURE + ANCIENT + EDGES + RECENT
    rows = []
    for k, at in enumerate(moments):
        status = _cycle(STATUSES, k)
        rows.append(
            {
                "id": uuid.UUID(int=k + 1),
                "channel": _cycle((*CHANNELS, None), k),
                "instance_id": _cycle(INSTANCES, k),
                "event_type": "message.received",
                "direction": _cycle(DIRECTIONS, k // 3),
                "content_type": _cycle(CONTENT_TYPES, k // 2),
                "status": status,
                "error_stage": _cycle(STAGES, k // 5),
                "received_at": at,
                "processing_time_ms": _cycle(LATENCIES, k),
                "agent_latency_ms": _cycle(LATENCIES, k // 7),
            }
        )
    return rows


def _logs() -> list:
    moments = FUTURE + ANCIENT + EDGES[::3]
    return [
        {
            "id": uuid.UUID(int=10_000 + k),
            "automation_id": _cycle((AUTOMATION, AUTOMATION, None), k),
            "event_id": _cycle(("e", "", "ü" * 36), k),
            "status": _cycle(LOG_STATUSES, k),
            "conditions_matched": bool(k % 2),
            "actions_executed": _cycle(ACTIONS, k),
            "error": _cycle((None, "", "boom\n\ttrace", "<script>"), k),
            "execution_time_ms": _cycle(LATENCIES, k),
            "created_at": at,
        }
        # Two logs at each instant: the cursor's tie-break on id.
        for k, at in enumerate(itertools.chain.from_iterable(zip(moments, moments, strict=True)))
    ]


def _dead_letters() -> list:
    moments = FUTURE[::2] + ANCIENT[::2] + [NOW]
    return [
        {
            "id": uuid.UUID(int=20_000 + k),
            "event_id": None,
            "event_type": _cycle(EVENT_TYPES, k),
            "status": _cycle(DEAD_STATUSES, k),
            "created_at": at,
        }
        for k, at in enumerate(moments)
    ]


def _payloads() -> list:
    moments = FUTURE[::2] + ANCIENT[::2] + [NOW]
    return [
        {
            "id": uuid.UUID(int=30_000 + k),
            "event_id": "e",
            "stage": "webhook_raw",
            "payload_size_compressed": _cycle((None, 0, 2**31 - 1, 10), k),
            "timestamp": at,
            "deleted_at": _cycle((None, None, NOW, FIRST), k),
        }
        for k, at in enumerate(moments)
    ]


def _instances() -> list:
    return [
        {"id": INSTANCE_LIVE, "name": "wild-live", "channel": "дискорд", "is_active": True},
        {"id": uuid.UUID(int=40_001), "name": "'; --", "channel": "", "is_active": False},
        {"id": uuid.UUID(int=40_002), "name": "📱" * 10, "channel": "📱", "is_active": True},
    ]


def load(engine, *, replace: bool = True) -> Wild:
    """Write the wild rows into Omni's tables (in place of every row, unless ``replace``
    is false); delete the instance ``INSTANCE_GONE`` after its events were written (their
    instance_id turns NULL)."""
    wild = Wild(_events(), _logs(), _dead_letters(), _payloads(), _instances())
    with engine.begin() as conn:
        for table in (
            omni_events,
            automation_logs,
            event_payloads,
            dead_letter_events,
            automations,
            instances,
        ):
            if replace:
                conn.execute(delete(table))
        gone = {"id": INSTANCE_GONE, "name": "wild-gone", "channel": "slack", "is_active": True}
        conn.execute(insert(instances), [*wild.instances, gone])
        conn.execute(insert(automations), [{"id": AUTOMATION, "name": "wild"}])
        for table, rows in (
            (omni_events, wild.events),
            (automation_logs, wild.logs),
            (dead_letter_events, wild.dead_letters),
            (event_payloads, wild.payloads),
        ):
            conn.execute(insert(table), rows)
        conn.execute(delete(instances).where(instances.c.id == INSTANCE_GONE))
    for event in wild.events:
        if event["instance_id"] == INSTANCE_GONE:
            event["instance_id"] = None
    for log in wild.logs:
        if not isinstance(log["actions_executed"], list | dict | int | None):
            log["actions_executed"] = None  # SQL NULL reads as None
    return wild
