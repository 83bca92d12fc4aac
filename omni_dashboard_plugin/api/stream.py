"""GET /api/v2/events/stream (Server-Sent Events) and its WebSocket twin /api/v2/events/ws."""

import json

import flask
from flask import Response, request
from flask_smorest import Blueprint, abort
from flask_sock import Sock
from marshmallow import Schema, ValidationError, fields, validate, validates
from webargs.fields import DelimitedList

from ..live import cursor as ids
from ..live.hub import Filters
from ..live.sse import body, next_items, opening_items
from ..live.writer import raw_socket

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_NAMES = [
    "connected",
    "event.received",
    "instance.status",
    "status",
    "reset",
    "overflow",
]
SSE_EVENT = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": EVENT_NAMES},
        "id": {"type": "string", "description": "cursor; send back as Last-Event-ID"},
        "data": {"type": "string", "description": "JSON object; see docs/live-feed.md"},
        "retry": {"type": "string", "description": "reconnection delay hint, ms"},
    },
}


def query_schema(max_types: int) -> type[Schema]:
    """The stream's query arguments (shared by SSE and WebSocket)."""

    class StreamQuerySchema(Schema):
        instanceId = fields.String(validate=validate.Length(1, 64))
        channel = fields.String(validate=validate.Length(1, 50))
        types = DelimitedList(
            fields.String(validate=validate.Length(1, 64)),
            validate=validate.Length(1, max_types),
            metadata={"description": f"comma list of Omni event types, at most {max_types}"},
        )
        lastEventId = fields.String(
            validate=validate.Length(1, 1200),
            metadata={"description": "resume after this id (as the Last-Event-ID header)"},
        )

        @validates("lastEventId")
        def _known_shape(self, value, **kwargs):
            try:
                ids.decode(value)
            except ids.BadCursor as exc:
                raise ValidationError("Not an event id issued by this feed.") from exc

    return StreamQuerySchema


def _filters(args) -> Filters:
    return Filters(
        instance_id=args.get("instanceId"),
        channel=args.get("channel"),
        types=frozenset(args.get("types") or ()),
    )


def _subscribe(dashboard, args):
    hub = dashboard.live.hub()
    after = args.get("lastEventId") or request.headers.get("Last-Event-ID")
    start = hub.subscribe(_filters(args), after)
    if start is None:
        abort(503, message="Too many open streams on this server; retry later.")
    return hub, start


def build(dashboard) -> Blueprint:
    """The SSE route (documented in OpenAPI)."""
    settings = dashboard.config.stream
    blp = Blueprint(
        "events-stream",
        __name__,
        url_prefix="/api/v2/events",
        description="The live event feed (see docs/live-feed.md).",
    )

    @blp.route("/stream")
    @blp.arguments(query_schema(settings.max_types), location="query")
    @blp.response(
        200,
        SSE_EVENT,
        content_type="text/event-stream",
        description="A stream of Server-Sent Events; the schema is that of one event.",
    )
    @blp.alt_response(503, description="Too many open streams on this server")
    def stream(args):
        """Live events as Server-Sent Events; resume with Last-Event-ID."""
        hub, start = _subscribe(dashboard, args)
        sock = raw_socket(request.environ) if settings.writer == "auto" else None
        if sock is not None:
            opening = f"retry: {settings.retry_ms}\n\n" + "".join(
                item.sse() for item in opening_items(hub, start)
            )
            try:
                dashboard.live.writer().serve(sock, start, opening, settings.lifetime_ms)
            finally:
                hub.unsubscribe(start.subscription)
            # The stream was written on the socket; the server finds it closed.
            return Response(status=200, mimetype="text/event-stream", headers=STREAM_HEADERS)
        return Response(
            body(hub, start, settings.heartbeat_seconds, settings.retry_ms, settings.lifetime_ms),
            mimetype="text/event-stream",
            headers=STREAM_HEADERS,
        )

    return blp


def build_websocket(dashboard, app) -> flask.Blueprint:
    """The WebSocket route: the same events as JSON text frames ``{event, id, data}``."""
    settings = dashboard.config.stream
    schema = query_schema(settings.max_types)()
    ws_bp = flask.Blueprint("events-ws", __name__, url_prefix="/api/v2/events")
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": settings.heartbeat_seconds})

    @ws_bp.before_request
    def _validate_before_upgrade():
        try:
            args = schema.load(request.args, unknown="exclude")
        except ValidationError as err:
            abort(422, errors={"query": err.messages})
        flask.g.omni_stream = _subscribe(dashboard, args)

    sock = Sock()

    @sock.route("/ws", bp=ws_bp)
    def events_ws(ws):
        hub, start = flask.g.omni_stream
        try:
            for item in opening_items(hub, start):
                ws.send(json.dumps({"event": item.name, "id": item.id, "data": item.data}))
            while ws.connected:
                for item in next_items(start, settings.heartbeat_seconds):
                    ws.send(json.dumps({"event": item.name, "id": item.id, "data": item.data}))
                    if item.final:
                        return
        finally:
            hub.unsubscribe(start.subscription)

    return ws_bp
