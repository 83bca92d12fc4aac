"""Load N events (with automation logs, dead letters, payloads, instances) into PostgreSQL fast.

Rows are generated server-side with generate_series and random(), in ranges of at most
``CHUNK`` rows, each seeded with setseed from its first row and inserted by one of
``workers`` connections (one per core by default), so the same arguments load the same rows
whatever the number of workers. The events' indexes, primary key included, are dropped
for the load and rebuilt afterwards, one per connection, and the loading sessions skip the
row-by-row foreign-key checks (``session_replication_role = replica``: the rows reference
the instances the loader inserted first), so the cost is the rows themselves. Ranges are
taken oldest first, as an append-only table fills, so that recent rows are physically
together (within the ranges loaded at once).
"""

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.schema import CreateIndex

from host_example.db import create_tables
from host_example.seed import SeedPlan
from host_example.tables import CHANNELS, automations, instances, metadata, omni_events

PRIMARY_KEY = "omni_events_pkey"

EVENTS_SQL = """
INSERT INTO omni_events (id, external_id, channel, instance_id, event_type, direction,
    content_type, chat_id, status, error_stage, error_message, received_at, processed_at,
    processing_time_ms, agent_latency_ms, total_latency_ms, created_at)
SELECT gen_random_uuid(), 'ext-' || g, channel, instance_id, event_type, direction,
    content_type, 'chat-' || (g % 500), status,
    CASE WHEN status = 'failed' THEN stage END,
    CASE WHEN status = 'failed' THEN stage || ' error' END,
    received_at,
    CASE WHEN processing IS NOT NULL
         THEN received_at + processing * interval '1 millisecond' END,
    processing, agent, processing + coalesce(agent, 0), received_at
FROM (
    SELECT g,
        (CAST(:channels AS text[]))[1 + (g % 5)] AS channel,
        (CAST(:instances AS uuid[]))[1 + floor(random() * :n_instances)::int] AS instance_id,
        CASE WHEN r < 0.5 THEN 'message.received' WHEN r < 0.85 THEN 'message.sent'
             WHEN r < 0.9 THEN 'message.failed' ELSE 'media.received' END AS event_type,
        CASE WHEN r < 0.5 OR r >= 0.9 THEN 'inbound' ELSE 'outbound' END AS direction,
        CASE WHEN r < 0.9 THEN (ARRAY['text','text','text','text','audio','image','video',
             'document','sticker'])[1 + floor(u * 9)::int] END AS content_type,
        CASE WHEN r >= 0.85 AND r < 0.9 THEN 'failed'
             WHEN r < 0.5 AND s < 0.05 THEN 'failed'
             WHEN r < 0.5 AND s < 0.11 THEN 'received'
             WHEN r < 0.5 AND s < 0.15 THEN 'processing'
             ELSE 'completed' END AS status,
        (ARRAY['agent','channel_send','media_download','rate_limit','validation'])
             [1 + floor(u * 5)::int] AS stage,
        CAST(:now AS timestamp) - t * :days * interval '1 day' AS received_at,
        CASE WHEN r < 0.5 AND s >= 0.05 AND s < 0.15 THEN NULL
             ELSE (20 + u * u * 2000)::int END AS processing,
        CASE WHEN r < 0.5 AND s >= 0.15 THEN (300 + s * 2500)::int END AS agent
    FROM (SELECT g, random() AS r, random() AS s, random() AS u,
                 (CAST(:n AS float8) - g + random()) / :n AS t
          FROM generate_series(:first, :last) AS g) AS draws
) AS rows
"""

LOGS_SQL = """
INSERT INTO automation_logs (id, automation_id, event_id, status, conditions_matched,
    actions_executed, error, execution_time_ms, created_at)
SELECT gen_random_uuid(),
    (CAST(:automations AS uuid[]))[1 + (g % :n_automations)],
    gen_random_uuid()::text, status, status <> 'skipped',
    CASE WHEN status = 'skipped' THEN '[]'::jsonb
         WHEN s < 0.05 THEN NULL
         WHEN s < 0.4 THEN
              '[{"action": "send_message", "status": "success", "durationMs": 40}]'::jsonb
         WHEN s < 0.8 THEN
              '[{"action": "call_agent", "status": "success", "durationMs": 900},
                {"action": "send_message", "status": "success", "durationMs": 35}]'::jsonb
         ELSE '[{"action": "webhook","status": "success","durationMs": 120},
                {"action": "add_tag","status": "success","durationMs": 3},
                {"action": "log","status": "success","durationMs": 1}]'::jsonb END,
    CASE WHEN status = 'failed' THEN 'action failed' END,
    CASE WHEN status = 'skipped' THEN 1 ELSE (5 + s * 1500)::int END,
    CAST(:now AS timestamp) - t * :days * interval '1 day'
FROM (SELECT g, random() AS s, (CAST(:n AS float8) - g + random()) / :n AS t,
             CASE WHEN random() < 0.7 THEN 'success' WHEN random() < 0.4 THEN 'failed'
                  ELSE 'skipped' END AS status
      FROM generate_series(:first, :last) AS g) AS draws
"""

DEAD_SQL = """
INSERT INTO dead_letter_events (id, event_id, event_type, subject, payload, error, status,
    created_at, resolved_at)
SELECT gen_random_uuid(), gen_random_uuid()::text,
    (ARRAY['message.received','message.sent','media.processed'])[1 + (g % 3)],
    'message.received.slack', '{"reason": "handler failed"}'::jsonb, 'handler failed',
    (ARRAY['pending','retrying','resolved','abandoned'])[1 + floor(random() * 4)::int],
    CAST(:now AS timestamp) - random() * :days * interval '1 day', NULL
FROM generate_series(:first, :last) AS g
"""

PAYLOADS_SQL = """
INSERT INTO event_payloads (id, event_id, event_type, stage, payload_size_original,
    payload_size_compressed, timestamp, deleted_at)
SELECT gen_random_uuid(), gen_random_uuid()::text, 'message.received',
    (ARRAY['webhook_raw','agent_request','agent_response','channel_send','error'])
        [1 + (g % 5)],
    size, size / 3, stamp,
    CASE WHEN g % 10 = 0 AND stamp + interval '1 day' <= CAST(:now AS timestamp)
         THEN stamp + interval '1 day' END
FROM (SELECT g, (200 + random() * 20000)::int AS size,
             CAST(:now AS timestamp)
                 - (CAST(:n AS float8) - g + random()) / :n * :days * interval '1 day' AS stamp
      FROM generate_series(:first, :last) AS g) AS draws
"""


CHUNK = 2_000_000


def _ranges(sql: str, n: int, params: dict) -> list[tuple[str, dict]]:
    """``sql`` over rows 1..n in ranges of at most CHUNK rows, oldest first."""
    return [
        (sql, {**params, "n": n, "first": first, "last": min(first + CHUNK - 1, n)})
        for first in range(1, n + 1, CHUNK)
    ]


def _run(engine, seed: float, settings: str, job: tuple[str, dict]) -> None:
    sql, params = job
    with engine.begin() as conn:
        conn.exec_driver_sql(settings)
        # Seeded by its first row: the rows of a range do not depend on who loads it.
        conn.execute(text("SELECT setseed(:seed)"), {"seed": (seed + params["first"] / 1e9) % 1})
        conn.execute(text(sql), params)


def _in_parallel(engine, workers: int, jobs, run) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(run, engine, job) for job in jobs]:
            done.result()


def _rebuild(engine, job) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        conn.exec_driver_sql(job)


def load(
    engine,
    events: int,
    logs: int,
    days: int,
    now: datetime,
    seed: float = 0.42,
    workers: int | None = None,
) -> float:
    """Replace every row with generated data, ``workers`` connections at a time (default:
    one per core); returns the seconds it took."""
    started = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    create_tables(engine)
    plan = SeedPlan(events=events)
    instance_ids = [uuid.UUID(int=i + 1) for i in range(10)]
    automation_ids = [uuid.UUID(int=1000 + i) for i in range(6)]
    with engine.begin() as conn:
        # TRUNCATE, not DELETE: a previous, larger load must not leave its dead rows behind.
        names = ", ".join(table.name for table in reversed(metadata.sorted_tables))
        conn.exec_driver_sql(f"TRUNCATE {names}")
        conn.execute(
            instances.insert(),
            [
                {
                    "id": iid,
                    "name": f"bench-{n}",
                    "channel": CHANNELS[n % 5],
                    "is_active": n % 3 > 0,
                }
                for n, iid in enumerate(instance_ids)
            ],
        )
        conn.execute(
            automations.insert(),
            [{"id": aid, "name": f"bench-{n}"} for n, aid in enumerate(automation_ids)],
        )
        for index in omni_events.indexes:
            index.drop(conn, checkfirst=True)
        conn.exec_driver_sql(f"ALTER TABLE omni_events DROP CONSTRAINT IF EXISTS {PRIMARY_KEY}")
    common = {"now": now, "days": days}
    jobs = _ranges(
        EVENTS_SQL,
        events,
        {
            **common,
            "channels": list(CHANNELS),
            "instances": [str(i) for i in instance_ids],
            "n_instances": len(instance_ids),
        },
    )
    jobs += _ranges(
        LOGS_SQL,
        logs,
        {
            **common,
            "automations": [str(a) for a in automation_ids],
            "n_automations": len(automation_ids),
        },
    )
    jobs += _ranges(DEAD_SQL, plan.counts()["dead_letter_events"], common)
    jobs += _ranges(PAYLOADS_SQL, plan.counts()["event_payloads"], common)
    settings = "SET session_replication_role = replica; SET synchronous_commit = off"
    _in_parallel(engine, workers, jobs, lambda e, job: _run(e, seed, settings, job))
    _phase("rows inserted", started)
    rebuilds = [f"ALTER TABLE omni_events ADD CONSTRAINT {PRIMARY_KEY} PRIMARY KEY (id)"]
    rebuilds += [str(CreateIndex(index).compile(engine)) for index in omni_events.indexes]
    _in_parallel(engine, workers, rebuilds, _rebuild)
    _phase("indexes built", started)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    _phase("vacuumed and analyzed", started)
    return time.perf_counter() - started


def _phase(name: str, started: float) -> None:
    print(f"  load: {name} after {time.perf_counter() - started:.0f} s", flush=True)
