"""OpenAPI of the live feed: each event's data as a named schema, each event as a named
object discriminated by ``event``, and the WebSocket route (OpenAPI 3 has no WebSocket
operation; it is described as the GET that upgrades, with its frames as the 101 body)."""

from marshmallow import Schema, fields, validate

from ..live.hub import REFETCH

MODES = ("buffer", "jetstream")


class StreamStatusSchema(Schema):
    """The data of ``connected`` and ``status``: the feed's mode and NATS connection."""

    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    natsConnected = fields.Boolean(
        required=True, allow_none=True, metadata={"description": "null: no NATS configured"}
    )


class EventReceivedDataSchema(Schema):
    """The data of ``event.received``: one Omni event other than an instance state."""

    id = fields.String(required=True)
    eventType = fields.String(required=True, metadata={"example": "message.received"})
    instanceId = fields.String(required=True, allow_none=True)
    channel = fields.String(required=True, allow_none=True)
    direction = fields.String(
        validate=validate.OneOf(("inbound", "outbound")),
        metadata={"description": "message.* events only"},
    )
    receivedAt = fields.DateTime(required=True, metadata={"description": "ISO 8601, UTC"})


class InstanceStatusDataSchema(Schema):
    """The data of ``instance.status``: an instance connected or disconnected."""

    instanceId = fields.String(required=True, allow_none=True)
    channel = fields.String(required=True, allow_none=True)
    isConnected = fields.Boolean(required=True)


class ResetDataSchema(Schema):
    """The data of ``reset``: events were missed; refetch the summary, then keep streaming."""

    reason = fields.String(required=True)
    refetch = fields.String(required=True, metadata={"example": REFETCH})


class OverflowDataSchema(Schema):
    """The data of ``overflow``: the last event before the server closes a slow client."""

    reason = fields.String(required=True)
    resumeWith = fields.String(required=True, validate=validate.Equal("Last-Event-ID"))


# event name -> (component name of the event, component name of its data, data schema)
EVENTS = {
    "connected": ("ConnectedEvent", "StreamStatus", StreamStatusSchema),
    "event.received": ("EventReceivedEvent", "EventReceivedData", EventReceivedDataSchema),
    "instance.status": ("InstanceStatusEvent", "InstanceStatusData", InstanceStatusDataSchema),
    "status": ("StatusEvent", "StreamStatus", StreamStatusSchema),
    "reset": ("ResetEvent", "ResetData", ResetDataSchema),
    "overflow": ("OverflowEvent", "OverflowData", OverflowDataSchema),
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _event_object(name: str, data_component: str) -> dict:
    properties = {
        "event": {"type": "string", "enum": [name]},
        "id": {"type": "string", "description": "cursor; send back as Last-Event-ID"},
        "data": {
            "type": "string",
            "description": f"JSON of a {data_component}",
            "contentMediaType": "application/json",
            "contentSchema": _ref(data_component),
        },
    }
    if name == "connected":
        properties["retry"] = {"type": "integer", "description": "reconnection delay, ms"}
    return {"type": "object", "required": ["event", "id", "data"], "properties": properties}


STREAM_EVENT = _ref("StreamEvent")
STREAM_EVENT_UNION = {
    "oneOf": [_ref(component) for component, _, _ in EVENTS.values()],
    "discriminator": {
        "propertyName": "event",
        "mapping": {name: _ref(component)["$ref"] for name, (component, _, _) in EVENTS.items()},
    },
}


STREAM_FRAME = _ref("StreamFrame")
STREAM_FRAME_OBJECT = {
    "type": "object",
    "description": "A WebSocket text frame: one event, its data as an object.",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": list(EVENTS)},
        "id": {"type": "string", "description": "cursor; send back as lastEventId"},
        "data": {"anyOf": [_ref(data) for data in dict.fromkeys(d for _, d, _ in EVENTS.values())]},
    },
}


def register(spec) -> None:
    """Add the SSE events (and StreamEvent, their union), the WebSocket frame (StreamFrame)
    and the events' data to ``spec``'s components."""
    for name, (component, data_component, data_schema) in EVENTS.items():
        if data_component not in spec.components.schemas:
            spec.components.schema(data_component, schema=data_schema)
        spec.components.schema(component, _event_object(name, data_component))
    spec.components.schema("StreamEvent", STREAM_EVENT_UNION)
    spec.components.schema("StreamFrame", STREAM_FRAME_OBJECT)


def websocket_path(spec, rule, query_schema) -> None:
    """Describe the WebSocket twin of the SSE stream at ``rule`` (the app's URL rule)."""

    def envelope(description: str) -> dict:
        schema = {"$ref": "#/components/schemas/Error"}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    spec.path(
        rule=rule,
        operations={
            "get": {
                "tags": ["events-stream"],
                "summary": "Live events over a WebSocket (the SSE stream's twin).",
                "description": (
                    "An RFC 6455 upgrade. After 101 Switching Protocols, every event is a JSON "
                    "text frame (StreamFrame); the server pings every heartbeat interval. "
                    "See docs/live-feed.md."
                ),
                "parameters": [{"in": "query", "schema": query_schema}],
                "responses": {
                    "101": {
                        "description": "Switching Protocols; frames follow",
                        "content": {"application/json": {"schema": STREAM_FRAME}},
                    },
                    "400": envelope("Not a valid WebSocket handshake (the header is named)"),
                    "401": envelope("No valid API key"),
                    "422": envelope("An invalid argument (named)"),
                    "503": envelope("Too many open streams on this server"),
                    "default": envelope("Any other error"),
                },
            }
        },
    )
