"""The bench loader: the same rows whatever the number of connections that load them."""

import pytest
from sqlalchemy import create_engine, text

from bench import loader
from bench.harness import NOW

COLUMNS = (
    "channel, instance_id, event_type, direction, content_type, chat_id, status, error_stage, "
    "received_at, processing_time_ms, agent_latency_ms"
)


def _rows(engine) -> dict:
    with engine.connect() as conn:
        return {
            table: conn.execute(text(query)).all()
            for table, query in {
                "events": f"SELECT {COLUMNS} FROM omni_events ORDER BY received_at, chat_id",
                "logs": "SELECT automation_id, status, execution_time_ms, created_at "
                "FROM automation_logs ORDER BY created_at, automation_id",
                "payloads": "SELECT stage, payload_size_compressed, timestamp, deleted_at "
                "FROM event_payloads ORDER BY timestamp",
                "indexes": "SELECT indexname FROM pg_indexes WHERE tablename = 'omni_events' "
                "ORDER BY indexname",
            }.items()
        }


@pytest.mark.slow  # the bench loader fills a database
def test_one_or_two_connections_load_the_same_rows(own_pg_url, monkeypatch):
    """Ranges of 700 rows, loaded by one connection and then by two: the same events, logs
    and payloads (ids aside), and the events' primary key and indexes back in place. A
    database of its own: the loader bypasses triggers, which the shared one keeps."""
    monkeypatch.setattr(loader, "CHUNK", 700)
    engine = create_engine(own_pg_url)
    found = []
    for workers in (1, 2):
        seconds = loader.load(engine, 3000, 900, 30, NOW, workers=workers)
        assert seconds > 0
        found.append(_rows(engine))
    engine.dispose()
    one, two = found
    assert len(one["events"]) == 3000 and len(one["logs"]) == 900
    assert one == two
    assert "omni_events_pkey" in [name for (name,) in one["indexes"]]
    assert len(one["indexes"]) == 9
