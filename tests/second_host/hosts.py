"""The hosts the contract tests run against: the second host always, the reference host
when ``host_example`` is installed (not in the wheel's run, outside the repository)."""

import importlib.util
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert

from omni_dashboard_plugin.host import make_plugin_manager

from . import tables as team_tables
from .app import create_app as create_team_app
from .data import Dataset

KEY = "contract-key"


@dataclass(frozen=True)
class Host:
    """How a test builds a host, fills its tables and asks it.

    ``build(url, clock, settings, bare=False, migrate=False)``: ``bare`` runs it with no
    plugin installed, ``migrate`` creates its tables and the plugin's. ``metrics`` and
    ``analytics`` are the paths of its extensible endpoints (``metrics_of`` takes the
    payload out of the metrics body); ``requests`` its own GETs, to compare byte for byte.
    """

    name: str
    build: Callable
    write: Callable[[object, Dataset], None]
    headers: dict
    metrics: str
    analytics: str
    metrics_of: Callable[[dict], dict]
    requests: tuple[str, ...]
    own_metrics_fields: frozenset[str] = frozenset()


def read(client, path: str, headers: dict) -> tuple[int, str, bytes | None]:
    """GET ``path``: (status, content type, body), without reading an event stream's body."""
    response = client.get(path, headers=headers, buffered=False)
    try:
        streamed = response.content_type.startswith("text/event-stream")
        return (
            response.status_code,
            response.content_type,
            None if streamed else response.get_data(),
        )
    finally:
        response.close()


def _build_team(url, clock, settings, bare=False, migrate=False):
    manager = make_plugin_manager(load_entrypoints=False) if bare else None
    return create_team_app(
        url, token=KEY, clock=clock, settings=settings, plugin_manager=manager, migrate=migrate
    )


def _write_team(engine, data: Dataset) -> None:
    with engine.begin() as conn:
        conn.execute(insert(team_tables.instances), data.instances)
        conn.execute(insert(team_tables.omni_events), data.events)
        conn.execute(insert(team_tables.dead_letter_events), data.dead_letters)
        conn.execute(insert(team_tables.event_payloads), data.payloads)
        conn.execute(insert(team_tables.automations), data.automations)
        conn.execute(insert(team_tables.automation_logs), data.logs)


SECOND = Host(
    name="second",
    build=_build_team,
    write=_write_team,
    headers={"Authorization": f"Bearer {KEY}"},
    metrics="/event-ops/metrics",
    analytics="/events/analytics",
    metrics_of=lambda body: body,
    requests=(
        "/event-ops/metrics",
        "/events/analytics",
        "/events/analytics?since=2026-03-01T00:00:00Z&until=2026-03-09T00:00:00Z",
        "/events/analytics?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
        "/events/analytics?since=not-a-date",
        "/instances",
        "/status",
        "/no-such-route",
    ),
    own_metrics_fields=frozenset({"myTeamNote"}),
)


def _build_reference(url, clock, settings, bare=False, migrate=False):
    from host_example import create_app  # only where it is installed

    config = {"TESTING": True, "OMNI_DATABASE_URL": url, "OMNI_API_KEY": KEY, "OMNI_CLOCK": clock}
    return create_app({**config, "OMNI_LOAD_PLUGINS": not bare, **settings})


def _write_reference(engine, data: Dataset) -> None:
    from host_example import tables  # only where it is installed

    def ids(rows, **extra):
        return [{"id": uuid.uuid4(), **extra, **row} for row in rows]

    with engine.begin() as conn:
        conn.execute(
            insert(tables.instances),
            [{**row, "name": f"instance-{n}"} for n, row in enumerate(data.instances)],
        )
        events = [
            {
                **row,
                "event_type": f"message.{'received' if row['direction'] == 'inbound' else 'sent'}",
            }
            for row in data.events
        ]
        conn.execute(insert(tables.omni_events), ids(events))
        conn.execute(insert(tables.dead_letter_events), ids(data.dead_letters))
        conn.execute(insert(tables.event_payloads), ids(data.payloads, event_id="e", stage="error"))
        conn.execute(
            insert(tables.automations),
            [{**row, "name": f"automation-{n}"} for n, row in enumerate(data.automations)],
        )
        conn.execute(
            insert(tables.automation_logs), ids(data.logs, event_id="e", conditions_matched=True)
        )


REFERENCE = Host(
    name="reference",
    build=_build_reference,
    write=_write_reference,
    headers={"x-api-key": KEY},
    metrics="/api/v2/event-ops/metrics",
    analytics="/api/v2/events/analytics",
    metrics_of=lambda body: body["data"],
    requests=(
        "/api/v2/event-ops/metrics",
        "/api/v2/events/analytics",
        "/api/v2/events/analytics?allTime=true",
        "/api/v2/events/analytics?since=2026-03-01T00:00:00Z&until=2026-03-09T00:00:00Z",
        "/api/v2/events/analytics?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
        "/api/v2/events/analytics?since=not-a-date",
        "/api/v2/dead-letters/stats",
        "/api/v2/automation-metrics",
        "/api/v2/automation-logs?limit=5",
        "/api/v2/no-such-route",
    ),
)

HOSTS = {"second": SECOND}
if importlib.util.find_spec("host_example") is not None:
    HOSTS["reference"] = REFERENCE
