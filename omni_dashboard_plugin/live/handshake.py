"""The WebSocket opening handshake (RFC 6455, section 4.2.1), checked before a slot is taken."""

import base64
import binascii


def _tokens(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",")}


def handshake_errors(method: str, headers) -> dict[str, list[str]]:
    """What is wrong with a WebSocket upgrade request, by header name; empty when it is valid."""
    errors: dict[str, list[str]] = {}
    if method != "GET":
        errors["method"] = ["A WebSocket handshake is a GET request."]
    if "upgrade" not in _tokens(headers.get("Connection")):
        errors["Connection"] = ["Must include 'Upgrade'."]
    if (headers.get("Upgrade") or "").strip().lower() != "websocket":
        errors["Upgrade"] = ["Must be 'websocket'."]
    if (headers.get("Sec-WebSocket-Version") or "").strip() != "13":
        errors["Sec-WebSocket-Version"] = ["Must be 13."]
    try:
        key = base64.b64decode((headers.get("Sec-WebSocket-Key") or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 16:
        errors["Sec-WebSocket-Key"] = ["Must be 16 random bytes in base64."]
    return errors
