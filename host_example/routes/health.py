"""GET /api/v2/health (open, no API key)."""

from flask_smorest import Blueprint

from ..health import health_report
from ..schemas import HealthResponseSchema
from .common import host


def build(dashboard) -> Blueprint:
    """The health blueprint."""
    blp = Blueprint("health", __name__, url_prefix="/api/v2")

    @blp.route("/health")
    @blp.response(200, HealthResponseSchema)
    @blp.alt_response(503, schema=HealthResponseSchema, description="Degraded")
    @blp.doc(security=[])
    def health():
        """Service health; HTTP 503 when degraded."""
        body = health_report(host())
        return body, 503 if body["status"] == "degraded" else 200

    return blp
