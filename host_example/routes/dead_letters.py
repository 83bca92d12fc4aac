"""GET /api/v2/dead-letters/stats."""

from flask_smorest import Blueprint
from marshmallow import fields

from .. import queries
from ..schemas import DeadLetterStatsSchema, Schema
from .common import host


class DeadLetterStatsEnvelopeSchema(Schema):
    data = fields.Nested(DeadLetterStatsSchema, required=True)


def build(dashboard) -> Blueprint:
    """The dead-letters blueprint."""
    blp = Blueprint("dead-letters", __name__, url_prefix="/api/v2/dead-letters")

    @blp.route("/stats")
    @blp.response(200, DeadLetterStatsEnvelopeSchema)
    def stats():
        """Dead letters by status and event type."""
        with host().engine.connect() as conn:
            return {"data": queries.dead_letter_stats(conn)}

    return blp
