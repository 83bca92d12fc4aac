"""The host's health report, shared by GET /health and the dashboard's host facts."""

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from omni_dashboard_plugin.facts import HostFacts

from . import __version__, queries


def _database(state, with_instances: bool):
    started = state.clock()
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            latency = round((state.clock() - started).total_seconds() * 1000)
            instances = queries.instance_summary(conn) if with_instances else None
            return {"status": "ok", "latency": latency}, instances
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        return {"status": "error", "latency": None}, None


def _nats(state):
    if state.nats_probe is None:
        return {"status": "disabled", "details": {"connected": False}}
    probe = state.nats_probe.check()
    return {
        "status": "ok" if probe.connected else "error",
        "latency": probe.latency,
        "details": {"connected": probe.connected},
    }


def health_report(state, with_instances: bool = True) -> dict:
    """The body of GET /health; ``status`` is 'degraded' when the database or NATS fails."""
    now = state.clock()
    database, instances = _database(state, with_instances)
    nats = _nats(state)
    degraded = database["status"] != "ok" or nats["status"] == "error"
    body = {
        "status": "degraded" if degraded else "healthy",
        "version": __version__,
        "uptime": int((now - state.started_at).total_seconds()),
        "timestamp": now,
        "checks": {"database": database, "nats": nats},
    }
    if instances is not None:
        body["instances"] = instances
    return body


def host_facts(state) -> HostFacts:
    """What the dashboard summary reports of this host."""
    report = health_report(state, with_instances=False)
    return HostFacts(
        status=report["status"],
        uptime=report["uptime"],
        db_latency=report["checks"]["database"]["latency"],
        nats_connected=report["checks"]["nats"]["details"]["connected"],
        automations_running=state.automation_engine.running,
    )
