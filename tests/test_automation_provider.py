"""The automations provider against a plain-Python oracle, on SQLite and PostgreSQL."""

import math
import uuid
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, null

from host_example.tables import automation_logs, automations

from .conftest import API_KEY, NOW, Clock, build_app, examples

AUTOMATION = uuid.UUID(int=99)
SQL_NULL = "sql-null"
JSON_NULL = "json-null"


@pytest.fixture(scope="module")
def env(db_url):
    clock = Clock()
    app = build_app(db_url, OMNI_CLOCK=clock)
    engine = app.extensions["omni_host"].engine
    with engine.begin() as conn:
        conn.execute(delete(automation_logs))
        conn.execute(delete(automations))
        conn.execute(insert(automations).values(id=AUTOMATION, name="a"))
    return app, engine


def oracle(logs, now):
    executed = [log for log in logs if log["status"] in ("success", "failed")]
    successes = sum(log["status"] == "success" for log in executed)
    times = [log["execution_time_ms"] for log in executed if log["execution_time_ms"] is not None]

    def n_actions(value):
        return len(value) if isinstance(value, list) else 0

    return {
        "totalExecutions": len(executed),
        "skipped": sum(log["status"] == "skipped" for log in logs),
        "totalActions": sum(n_actions(log["actions"]) for log in logs),
        "successRate": successes / len(executed) * 100 if executed else 0,
        "avgExecutionTimeMs": math.floor(Fraction(sum(times), len(times)) + Fraction(1, 2))
        if times
        else 0,
        "recentFailures": sum(
            log["status"] == "failed" and log["created_at"] >= now - timedelta(hours=24)
            for log in logs
        ),
    }


def load(engine, logs):
    def stored(value):
        if value == SQL_NULL:
            return null()
        if value == JSON_NULL:
            return None  # the JSON type stores Python None as JSON null
        return value

    with engine.begin() as conn:
        conn.execute(delete(automation_logs))
        for log in logs:
            conn.execute(
                insert(automation_logs).values(
                    id=uuid.uuid4(),
                    automation_id=AUTOMATION,
                    event_id=str(uuid.uuid4()),
                    status=log["status"],
                    conditions_matched=log["status"] != "skipped",
                    actions_executed=stored(log["actions"]),
                    execution_time_ms=log["execution_time_ms"],
                    created_at=log["created_at"],
                )
            )


def metrics(app):
    response = app.test_client().get("/api/v2/automation-metrics", headers={"x-api-key": API_KEY})
    assert response.status_code == 200
    return response.get_json()


action_st = st.fixed_dictionaries(
    {"action": st.sampled_from(["send_message", "webhook"]), "status": st.just("success")}
)
log_st = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["success", "failed", "skipped"]),
        "actions": st.one_of(
            st.just(SQL_NULL),
            st.just(JSON_NULL),
            st.lists(action_st, max_size=4),
            st.just({"not": "an array"}),
            st.just("scalar"),
        ),
        "execution_time_ms": st.one_of(st.none(), st.integers(0, 100_000)),
        "created_at": st.one_of(
            st.just(NOW - timedelta(hours=24)),
            st.just(NOW - timedelta(hours=24, milliseconds=1)),
            st.integers(0, 3 * 86_400_000).map(lambda ms: NOW - timedelta(milliseconds=ms)),
        ),
    }
)


@settings(max_examples=examples(0.6))
@given(logs=st.lists(log_st, max_size=25))
def test_automation_aggregates_match_the_oracle(env, logs):
    app, engine = env
    load(engine, logs)
    body = metrics(app)
    expected = oracle(logs, NOW)
    assert {key: body[key] for key in expected} == expected
    assert body["running"] is True and body["instanceQueues"] == []


def test_empty_table_gives_zeros(env):
    app, engine = env
    load(engine, [])
    assert metrics(app) == {
        "running": True,
        "instanceQueues": [],
        "totalExecutions": 0,
        "skipped": 0,
        "totalActions": 0,
        "successRate": 0,
        "avgExecutionTimeMs": 0,
        "recentFailures": 0,
    }


def test_a_failure_exactly_24_hours_old_is_recent(env):
    app, engine = env
    base = {"actions": [], "execution_time_ms": 10}
    load(
        engine,
        [
            {**base, "status": "failed", "created_at": NOW - timedelta(hours=24)},
            {**base, "status": "failed", "created_at": NOW - timedelta(hours=24, microseconds=1)},
            {**base, "status": "success", "created_at": NOW},
            {**base, "status": "skipped", "created_at": NOW, "actions": SQL_NULL},
        ],
    )
    body = metrics(app)
    assert body["recentFailures"] == 1
    assert body["totalExecutions"] == 3 and body["skipped"] == 1
    assert body["successRate"] == 1 / 3 * 100


def test_aggregates_are_present_when_the_engine_is_stopped(db_url, env):
    _, engine = env
    load(
        engine, [{"status": "success", "actions": [{}], "execution_time_ms": 3, "created_at": NOW}]
    )
    app = build_app(db_url, OMNI_AUTOMATIONS_RUNNING=False)
    body = metrics(app)
    assert body["running"] is False and body["message"] == "Automation engine not running"
    assert body["totalExecutions"] == 1 and body["totalActions"] == 1
    assert "instanceQueues" not in body
