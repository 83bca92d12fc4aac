"""GET /api/v2/events/stream (Server-Sent Events) and its WebSocket twin /api/v2/events/ws."""

import contextlib
import json
import logging
import threading

import flask
from flask import Response, request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields, validate, validates
from webargs.fields import DelimitedList

from ..config import installed
from ..handle import DashboardHandle
from ..live import cursor as ids
from ..live.handshake import handshake_errors
from ..live.hub import END, Filters
from ..live.sockets import bound_stalls, hang_up
from ..live.sse import SseBody, next_items, opening_items
from ..live.wake import WakingEvent
from .errors import answer_in_envelope
from .stream_schemas import STREAM_EVENT, websocket_path

log = logging.getLogger(__name__)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
NORMAL_CLOSURE, GOING_AWAY = 1000, 1001  # WebSocket close codes (RFC 6455, 7.4.1)
READER_EXIT_SECONDS = 5  # a bound on the wait for a WebSocket's reader thread to end


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


def _subscribe(dashboard: DashboardHandle, args):
    hub = dashboard.live.hub()
    after = args.get("lastEventId") or request.headers.get("Last-Event-ID")
    start = hub.subscribe(_filters(args), after)
    if start is None:
        abort(503, message="Too many open streams on this server; retry later.")
    return hub, start


def build(dashboard: DashboardHandle) -> Blueprint:
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
        STREAM_EVENT,
        content_type="text/event-stream",
        description=(
            "A stream of Server-Sent Events; the schema is that of one event, whose `data` "
            "line is the JSON of the object shown."
        ),
    )
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def stream(args):
        """Live events as Server-Sent Events; resume with Last-Event-ID."""
        if request.method == "HEAD":  # the head alone: no stream, no slot
            return Response(status=200, mimetype="text/event-stream", headers=STREAM_HEADERS)
        hub, start = _subscribe(dashboard, args)
        writer = dashboard.live.writer if settings.writer == "auto" else None
        return Response(
            SseBody(hub, start, settings, request.environ, writer),
            mimetype="text/event-stream",
            headers=STREAM_HEADERS,
        )

    return blp


def register_websocket(dashboard: DashboardHandle, app, api) -> flask.Blueprint | None:
    """The WebSocket route, registered on ``app`` (errors in Omni's envelope) and described
    in ``api``'s document; none without flask-sock (``pip install
    'omni-dashboard-plugin[live]'``). Returns its blueprint."""
    if not installed("flask_sock"):
        log.info("no /api/v2/events/ws: flask-sock is not installed (the [live] extra)")
        return None
    blueprint = build_websocket(dashboard, app)
    answer_in_envelope(blueprint)
    app.register_blueprint(blueprint)
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == "events-ws.events_ws")
    websocket_path(api.spec, rule, query_schema(dashboard.config.stream.max_types))
    return blueprint


def build_websocket(dashboard: DashboardHandle, app) -> flask.Blueprint:
    """The WebSocket route: the same events as JSON text frames ``{event, id, data}``."""
    settings = dashboard.config.stream
    schema = query_schema(settings.max_types)()
    ws_bp = flask.Blueprint("events-ws", __name__, url_prefix="/api/v2/events")
    options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
    options.setdefault("ping_interval", settings.heartbeat_seconds)
    options.setdefault("event_class", WakingEvent)

    @ws_bp.before_request
    def _validate_before_upgrade():
        if request.method == "OPTIONS":  # Flask's answer: the allowed methods
            return
        try:
            args = schema.load(request.args, unknown="exclude")
        except ValidationError as err:
            abort(422, errors={"query": err.messages})
        bad = handshake_errors(request.method, request.headers)
        if bad:
            abort(400, errors={"headers": bad}, headers={"Sec-WebSocket-Version": "13"})
        flask.g.omni_stream = _subscribe(dashboard, args)

    @ws_bp.teardown_request
    def _release_slot(exc):
        taken = flask.g.pop("omni_stream", None)
        if taken is not None:
            hub, start = taken
            hub.unsubscribe(start.subscription)

    from flask_sock import Sock  # the [live] extra, checked by register_websocket

    sock = Sock()

    @sock.route("/ws", bp=ws_bp)
    def events_ws(ws):
        hub, start = flask.g.omni_stream
        code = NORMAL_CLOSURE
        try:
            code = _serve_websocket(ws, hub, start, settings)
        finally:
            _close_websocket(ws, code)

    # The same path without the upgrade: werkzeug routes a request that is no WebSocket
    # handshake here rather than answering its own 400, so that the check above names the
    # header at fault.
    ws_bp.add_url_rule("/ws", endpoint="events_ws")
    return ws_bp


def _serve_websocket(ws, hub, start, settings) -> int:
    """Send the stream's frames on ``ws`` until it ends; the close code to end it with."""
    if isinstance(ws.event, WakingEvent):  # the client's close ends the wait below
        ws.event.on_set = start.subscription.queue.wake
    writing = threading.Event()

    def send(item):
        writing.set()
        try:
            ws.send(json.dumps({"event": item.name, "id": item.id, "data": item.data}))
        finally:
            writing.clear()

    bound_stalls(ws.sock, settings.send_timeout)

    def hang_up_mid_send() -> None:
        if writing.is_set():
            hang_up(ws.sock)

    start.subscription.on_overflow = hang_up_mid_send
    for item in opening_items(hub, start):
        send(item)
    while ws.connected:
        for item in next_items(start, settings.heartbeat_seconds):
            if item is END:  # the server is stopping
                return GOING_AWAY
            send(item)
            if item.final:
                return NORMAL_CLOSURE
    return NORMAL_CLOSURE


def _close_websocket(ws, code: int) -> None:
    """Close ``ws`` (unless the client did) and let simple-websocket's reader thread end
    first: shutting the socket down wakes it, where the server closing the socket under it
    would leave it waiting for its next ping (and holding the process at exit)."""
    from simple_websocket import ConnectionClosed  # the [live] extra, as flask-sock

    if ws.connected:
        reason = "server restarting; reconnect" if code == GOING_AWAY else None
        with contextlib.suppress(ConnectionClosed, OSError):
            ws.close(reason=code, message=reason)
    hang_up(ws.sock)
    ws.thread.join(READER_EXIT_SECONDS)
