"""Omni NATS messages into feed events, and the cursor ids."""

import json

import pytest

from omni_dashboard_plugin.live import cursor
from omni_dashboard_plugin.live.messages import MalformedMessage, parse

from .live_support import omni_message, subject_of


def test_message_event_becomes_event_received():
    message = omni_message("message.received", channel="discord", instance="i-9", n=5)
    event = parse(subject_of(message), json.dumps(message).encode())
    assert event.name == "event.received"
    assert event.data == {
        "id": "message.received-i-9-5",
        "eventType": "message.received",
        "instanceId": "i-9",
        "channel": "discord",
        "direction": "inbound",
        "receivedAt": "2026-02-02T02:40:00.005Z",
    }


def test_instance_events_become_instance_status():
    body = {
        "id": "x",
        "type": "instance.disconnected",
        "timestamp": 1,
        "payload": {"instanceId": "i-1", "channelType": "telegram", "willReconnect": True},
    }
    event = parse("instance.disconnected", json.dumps(body))
    assert event.name == "instance.status"
    assert event.data == {"instanceId": "i-1", "channel": "telegram", "isConnected": False}


def test_subject_fills_what_metadata_lacks_and_unknown_direction_is_absent():
    body = {"id": "m", "type": "media.processed", "timestamp": 0, "payload": {}}
    event = parse("media.processed.slack.i-2", json.dumps(body))
    assert (event.channel, event.instance_id) == ("slack", "i-2")
    assert "direction" not in event.data


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"type": "message.received", "timestamp": 1}',
        b'{"id": "x", "timestamp": 1}',
        b'{"id": "x", "type": "message.received"}',
        b'{"id": "x", "type": "message.received", "timestamp": true}',
        b'{"id": "x", "type": "message.received", "timestamp": 1e30}',
        b"\xff\xfe",
    ],
)
def test_malformed_messages_are_refused(raw):
    with pytest.raises(MalformedMessage):
        parse("message.received.slack.i", raw)


def test_cursor_round_trip_and_refusals():
    value = {"MESSAGE": 12, "INSTANCE": 0}
    assert cursor.decode(cursor.encode(value)) == value
    for bad in ("", "MESSAGE", "MESSAGE=x", "A=1,A=2", "bad name=1", ",".join(["A=1"] * 17)):
        with pytest.raises(cursor.BadCursor):
            cursor.decode(bad)
