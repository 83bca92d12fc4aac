"""Two apps on one database, rollups on and off, and the history the rollup tests write."""

import json
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, event, insert, select, text, update
from sqlalchemy.engine import make_url

from host_example.tables import (
    automation_logs,
    automations,
    dead_letter_events,
    event_payloads,
    instances,
    omni_events,
)

from .conftest import API_KEY, NOW, Clock, build_app, examples

HORIZON = timedelta(minutes=60)
INSTANCE_IDS = [uuid.UUID(int=i + 1) for i in range(3)]
AUTOMATION_IDS = [uuid.UUID(int=99 + i) for i in range(3)]
CHANNELS = ("whatsapp-cloud", "discord", "slack")
ZONES = ("UTC", "Asia/Kathmandu", "America/New_York")
DEAD_LETTER_STATUSES = ("pending", "retrying", "resolved", "abandoned", "parked")
HISTORY_TABLES = (omni_events, automation_logs, event_payloads, dead_letter_events)
START = NOW - timedelta(days=4)

event_spec = st.fixed_dictionaries(
    {
        "instance": st.integers(0, 3),
        "channel": st.integers(0, 2),
        "content_type": st.sampled_from((None, "text", "image")),
        "direction": st.sampled_from(("inbound", "outbound")),
        "status": st.sampled_from(("received", "processing", "completed", "failed")),
        "stage": st.sampled_from(("agent", "channel", "webhook")),
        "processing": st.one_of(
            st.none(),
            st.integers(0, 3000),
            st.integers(0, 600_000),
            st.integers(-20, 20),
            # The histogram's bounds and their neighbours (16 ms .. 524.288 s).
            st.builds(lambda k, d: 16 * 2**k + d, st.integers(0, 15), st.integers(-1, 1)),
        ),
        "agent": st.one_of(st.none(), st.integers(0, 5000)),
    }
)
log_spec = st.fixed_dictionaries(
    {
        "status": st.sampled_from(("success", "failed", "skipped")),
        "automation": st.integers(0, 2),
        "actions": st.one_of(st.none(), st.lists(st.just({"action": "x"}), max_size=3)),
        "time": st.one_of(st.none(), st.integers(0, 2000)),
    }
)
# Offsets in minutes before the clock, crowding slot edges (history, windows), or around
# the clock (late writes, within the horizon).
offset = st.builds(
    lambda quarter, jitter: quarter * 15 + jitter,
    st.integers(0, 3 * 24 * 4),
    st.sampled_from((-1, 0, 0, 1, 7)),
)
SAMPLE_EVENT = {
    "instance": 0,
    "direction": "inbound",
    "status": "completed",
    "stage": "agent",
    "processing": 40,
    "agent": 7,
}
logs = st.lists(st.tuples(offset, log_spec), max_size=30)
history = st.lists(st.tuples(offset, event_spec), min_size=30, max_size=150)
late = st.lists(st.tuples(st.integers(-59, 10), event_spec), max_size=8)
step = st.one_of(
    st.tuples(st.just("advance"), offset.filter(lambda minutes: minutes > 0)),
    st.tuples(st.just("refresh"), st.one_of(st.none(), st.integers(0, 5 * 24 * 60))),
    st.tuples(st.just("late"), late),
    st.tuples(st.just("finish"), st.integers(1, 900)),
    st.tuples(st.just("retention"), st.tuples(st.integers(0, 149), st.sampled_from((0, 1)))),
    st.tuples(st.just("soft_delete"), st.integers(1, 4)),
    st.tuples(st.just("delete_instance"), st.integers(0, 2)),
    st.tuples(st.just("delete_automation"), st.integers(0, 2)),
    st.tuples(
        st.just("dead_letters"),
        st.tuples(
            st.sampled_from(("insert", "update", "delete")),
            st.integers(0, 4),
            st.sampled_from(DEAD_LETTER_STATUSES),
        ),
    ),
)


class Pair:
    """The example host twice on one database: ``on`` reads rollups (refreshed only when a
    test says so), ``off`` reads raw rows; both share one clock."""

    def __init__(self, db_url, fresh=True, **config):
        self.clock = Clock()
        common = {"OMNI_CLOCK": self.clock, "OMNI_DASHBOARD_CACHE_SECONDS": 0}
        rollups = {
            "OMNI_DASHBOARD_ROLLUPS": "on",
            "OMNI_DASHBOARD_ROLLUPS_REFRESH": "cron",
            "OMNI_DASHBOARD_ROLLUPS_HORIZON_MINUTES": HORIZON.seconds // 60,
        }
        self.on = build_app(db_url, **common, **{**rollups, **config})
        self.off = build_app(db_url, **common)
        self.engine = self.on.extensions["omni_host"].engine
        self.rollups = self.on.extensions["omni_dashboard"].rollups
        if fresh:
            self.parents()

    def parents(self):
        """Omni's instances and automations, as at the start (a test may delete some)."""
        with self.engine.begin() as conn:
            for table in (*HISTORY_TABLES, automations, instances):
                conn.execute(delete(table))
            conn.execute(
                insert(instances),
                [
                    {"id": i, "name": f"inst-{n}", "channel": CHANNELS[n]}
                    for n, i in enumerate(INSTANCE_IDS)
                ],
            )
            conn.execute(
                insert(automations),
                [{"id": a, "name": f"auto-{n}"} for n, a in enumerate(AUTOMATION_IDS)],
            )

    @classmethod
    def attach(cls, db_url) -> "Pair":
        """Another pair on the same database, keeping its rows (another process, say)."""
        return cls(db_url, fresh=False)

    def clear(self, now):
        """Empty history and rollups, every instance and automation back; the clock at
        ``now``."""
        self.clock.now = now
        self.parents()
        self.rollups.reset()

    def get(self, app, url) -> bytes:
        response = app.test_client().get(url, headers={"x-api-key": API_KEY})
        assert response.status_code == 200, (url, response.get_json())
        return response.data

    def watermark(self):
        from omni_dashboard_plugin.rollups.state import read_watermark

        with self.engine.connect() as conn:
            return read_watermark(conn)


def assert_same(pair, window, instance, keep=lambda url: True):
    """Every dashboard-facing response (those of :func:`urls` that ``keep`` keeps) is
    byte-identical with rollups on and off."""
    for url in filter(keep, urls(window, instance)):
        on, off = pair.get(pair.on, url), pair.get(pair.off, url)
        if url.startswith("/api/v2/dashboard"):  # measured latency differs between two calls
            on, off = (json.dumps({**json.loads(body), "system": None}) for body in (on, off))
        if on != off:
            on, off = (json.loads(body).get("data") for body in (on, off))
            keys = on.keys() | off.keys()
            diff = {k: (on.get(k), off.get(k)) for k in keys if on.get(k) != off.get(k)}
            raise AssertionError(f"{url}: rollups on/off differ: {diff or 'in bytes only'}")
    path = "/api/v2/dashboard?timezone=Asia/Kolkata"
    on, off = (json.loads(pair.get(app, path)) for app in (pair.on, pair.off))
    on.pop("system"), off.pop("system")  # measured latency differs between two calls
    assert on == off


def urls(window, instance):
    """The URLs compared: all-time, default, zoned and filtered windows of each endpoint."""
    since, until = (moment.isoformat() + "Z" for moment in window)
    zone = ZONES[window[0].minute % 3]
    channel = CHANNELS[window[1].minute % 3]
    return [
        "/api/v2/event-ops/metrics",
        "/api/v2/events/analytics",
        f"/api/v2/events/analytics?allTime=true&timezone={zone}",
        f"/api/v2/events/analytics?allTime=true&granularity=daily&instanceId={instance}",
        f"/api/v2/events/analytics?since={since}&until={until}&timezone={zone}",
        f"/api/v2/events/analytics?since={since}&instanceId={instance}",
        f"/api/v2/events/analytics?since={since}&until={until}&channel={channel}"
        f"&compare=previous_period&timezone={zone}",
        f"/api/v2/events/analytics?since={since}&instanceId={instance}&channel={channel}"
        "&compare=previous_week",
        "/api/v2/automation-metrics",
        f"/api/v2/dashboard?instanceId={instance}&compare=previous_period&timezone={zone}",
        f"/api/v2/dashboard?channel={channel}&compare=previous_week",
    ]


def event_row(at, spec) -> dict:
    """An omni_events row at ``at`` from a drawn spec."""
    status = spec["status"]
    done = status in ("completed", "failed")
    return {
        "id": uuid.uuid4(),
        "channel": CHANNELS[spec.get("channel", spec["instance"] % 3)],
        "content_type": spec.get("content_type"),
        "instance_id": INSTANCE_IDS[spec["instance"]] if spec["instance"] < 3 else None,
        "event_type": "message.received",
        "direction": spec["direction"],
        "status": status,
        "error_stage": spec["stage"] if status == "failed" else None,
        "received_at": at,
        "processing_time_ms": spec["processing"] if done else None,
        "agent_latency_ms": spec["agent"] if done else None,
    }


def log_row(at, spec) -> dict:
    """An automation_logs row at ``at``."""
    return {
        "id": uuid.uuid4(),
        "automation_id": AUTOMATION_IDS[spec.get("automation", 0)],
        "event_id": "e",
        "status": spec["status"],
        "conditions_matched": True,
        "actions_executed": spec["actions"],
        "execution_time_ms": spec["time"],
        "created_at": at,
    }


def payload_row(at, size) -> dict:
    """An event_payloads row stored at ``at``."""
    return {
        "id": uuid.uuid4(),
        "event_id": "e",
        "stage": "webhook_raw",
        "payload_size_compressed": size,
        "timestamp": at,
    }


def slipped_row(kind, **values) -> dict:
    """A row for one of the kind's tables that counts 1,000 events no write made: its dims
    NULL and its other measures 0 unless ``values`` says otherwise."""
    return {d: None for d in kind.dims} | {m: 0 for m in kind.measures} | {"n": 1000} | values


def regular_history(pair, days=6, every_minutes=37, *, spec):
    """On a cleared pair: events of ``spec`` (processing times varied), automation logs
    and payloads every ``every_minutes`` over the ``days`` before ``NOW``."""
    pair.clear(NOW)
    moments = [NOW - timedelta(minutes=m) for m in range(0, days * 24 * 60, every_minutes)]
    write(
        pair.engine,
        events=[
            event_row(at, {**spec, "processing": i * 7919 % 5000}) for i, at in enumerate(moments)
        ],
        logs=[log_row(at, {"status": "success", "actions": [], "time": 5}) for at in moments],
        payloads=[payload_row(at, 100) for at in moments],
    )


def write(engine, events=(), logs=(), payloads=(), dead=()):
    """Insert rows into Omni's tables."""
    with engine.begin() as conn:
        for table, rows in (
            (omni_events, events),
            (automation_logs, logs),
            (event_payloads, payloads),
            (dead_letter_events, dead),
        ):
            if rows:
                conn.execute(insert(table), list(rows))


def finish_recent(engine, since, processing):
    """Complete every unfinished event received at or after ``since`` (late updates)."""
    with engine.begin() as conn:
        conn.execute(
            update(omni_events)
            .where(omni_events.c.received_at >= since, omni_events.c.status == "received")
            .values(status="completed", processing_time_ms=processing)
        )


def soft_delete_payloads(engine, now, every):
    """Mark every ``every``-th live payload deleted at ``now`` (any age, as Omni does)."""
    with engine.begin() as conn:
        live = conn.scalars(
            select(event_payloads.c.id)
            .where(event_payloads.c.deleted_at.is_(None))
            .order_by(event_payloads.c.id)
        ).all()
        doomed = live[::every]
        if doomed:
            conn.execute(
                update(event_payloads)
                .where(event_payloads.c.id.in_(doomed))
                .values(deleted_at=now, deleted_by="test")
            )


def delete_parent(engine, table, key):
    """Delete an instance (its events' instance_id turns NULL) or an automation (its logs
    go too), as Omni's foreign keys do."""
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.id == key))


def retention(engine, cutoff):
    """Delete events and automation logs older than ``cutoff`` (a retention job)."""
    with engine.begin() as conn:
        conn.execute(delete(omni_events).where(omni_events.c.received_at < cutoff))
        conn.execute(delete(automation_logs).where(automation_logs.c.created_at < cutoff))


def apply_step(pair, action, value, events, gone: set) -> None:
    """One drawn ``step`` on the pair's database and clock; ``events`` is the drawn
    history (retention cuts at one of its instants), ``gone`` the deleted instances."""
    now = pair.clock.now
    if action == "advance":
        pair.clock.now = now + timedelta(minutes=value)
    elif action == "refresh":
        until = None if value is None else now - timedelta(minutes=value)
        pair.rollups.refresh(until=until, chunk_slots=32)
    elif action == "late":
        # A deleted instance receives no more events.
        specs = [(m, {**e, "instance": 3} if e["instance"] in gone else e) for m, e in value]
        write(pair.engine, events=[event_row(now - timedelta(minutes=m), e) for m, e in specs])
    elif action == "finish":
        finish_recent(pair.engine, now - HORIZON, value)
    elif action == "retention":
        # Up to (or just past) one of the history's events.
        cutoff = START - timedelta(minutes=events[value[0] % len(events)][0])
        retention(pair.engine, cutoff + timedelta(microseconds=value[1]))
    elif action == "soft_delete":
        soft_delete_payloads(pair.engine, now, value)
    elif action == "delete_instance":
        delete_parent(pair.engine, instances, INSTANCE_IDS[value])
        gone.add(value)
    elif action == "delete_automation":
        delete_parent(pair.engine, automations, AUTOMATION_IDS[value])
    elif action == "dead_letters":
        change_dead_letters(pair.engine, now, *value)


def change_dead_letters(engine, now, operation: str, n: int, status: str) -> None:
    """Insert ``n`` dead letters of ``status``, or move (or delete) up to ``n`` of them
    whichever status they have, in one statement, as Omni's retry worker would."""
    table = dead_letter_events
    with engine.begin() as conn:
        if operation == "insert":
            rows = [{"id": uuid.uuid4(), "status": status, "created_at": now} for _ in range(n)]
            if rows:
                conn.execute(insert(table), rows)
            return
        chosen = select(table.c.id).order_by(table.c.id).limit(n).scalar_subquery()
        if operation == "update":
            conn.execute(update(table).where(table.c.id.in_(chosen)).values(status=status))
        else:
            conn.execute(delete(table).where(table.c.id.in_(chosen)))


def pair_examples(share: float):
    """Hypothesis settings for a test on a :class:`Pair`: ``share`` of the profile's
    examples, no shrinking (one example writes and reads two apps; shrinking would take
    minutes)."""
    return settings(
        max_examples=examples(share),
        suppress_health_check=[HealthCheck.too_slow],
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
    )


# What a plugin user who owns none of Omni's tables is granted (a reader of everything).
READER_GRANTS = (
    'GRANT CONNECT, CREATE ON DATABASE "{database}" TO {role}',
    "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
)


@contextmanager
def database_role(pg_url: str, grants):
    """A new login role on the test database with ``grants`` (``{role}`` and ``{database}``
    filled in); yields its URL, then drops it and what it owns."""
    role = f"omni_role_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        for grant in grants:
            conn.execute(text(grant.format(role=role, database=make_url(pg_url).database)))
    try:
        yield make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def alongside(writers, step) -> list:
    """Run each of ``writers`` (callables) in a thread of its own while ``step()`` runs over
    and over in another, until the writers are done; returns what they raised."""
    stop, errors = threading.Event(), []

    def guarded(write):
        try:
            write()
        except Exception as exc:  # reported to the caller
            errors.append(exc)

    def repeat():
        while not stop.is_set():
            step()

    threads = [threading.Thread(target=guarded, args=(write,)) for write in writers]
    stepping = threading.Thread(target=repeat)
    stepping.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    stepping.join()
    return errors


@contextmanager
def statements(engine, matches):
    """Yield a list that collects the statements run on ``engine`` meanwhile for which
    ``matches(statement)`` holds."""
    found = []

    def record(conn, cursor, statement, *args):
        if matches(statement):
            found.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)
