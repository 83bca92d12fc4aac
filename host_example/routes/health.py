"""GET /api/v2/health (open, no API key)."""

from flask_smorest import Blueprint
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from .. import __version__, queries
from ..nats_check import nats_reachable
from ..schemas import HealthSchema
from .common import host


def _database(state):
    started = state.clock()
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            latency = round((state.clock() - started).total_seconds() * 1000)
            return {"status": "ok", "latency": latency}, queries.instance_summary(conn)
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        return {"status": "error", "latency": None}, None


def _nats(state):
    if not state.nats_url:
        return {"status": "disabled", "details": {"connected": False}}
    connected = nats_reachable(state.nats_url)
    return {"status": "ok" if connected else "error", "details": {"connected": connected}}


def build(dashboard) -> Blueprint:
    """The health blueprint."""
    blp = Blueprint("health", __name__, url_prefix="/api/v2")

    @blp.route("/health")
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Degraded")
    @blp.doc(security=[])
    def health():
        """Service health; HTTP 503 when degraded."""
        state = host()
        now = state.clock()
        database, instances = _database(state)
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
        return body, 503 if degraded else 200

    return blp
