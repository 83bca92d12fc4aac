"""Hostile or careless input gets a clear answer: bounded timelines, unrepresentable dates,
405 with Allow, 414 and 431 envelopes, and no redirect that echoes a key."""

import base64
import json
import socket
from pathlib import Path

import pytest

from .conftest import API_KEY, build_app
from .live_support import Served
from .waiting import finishes

SPEC = json.loads((Path(__file__).resolve().parent.parent / "docs" / "openapi.json").read_text())
HEADERS = {"x-api-key": API_KEY}


@pytest.fixture(scope="module")
def client(db_url):
    return build_app(db_url).test_client()


def ask(client, url, **kwargs):
    """GET with the key; a request that hangs (builds a grid it should have refused, say)
    fails the test at the ceiling."""
    return finishes(lambda: client.get(url, headers=HEADERS, **kwargs), f"GET {url}")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=1000-01-01T00:00:00Z", "since"),
        ("since=0001-01-02T00:00:00Z&until=9999-12-30T00:00:00Z", "since"),
        ("since=1000-01-01T00:00:00Z&granularity=daily", "granularity"),
        ("since=1000-01-01T00:00:00Z&granularity=hourly", "granularity"),
        ("since=0001-01-02T00:00:00Z&until=9999-12-30T00:00:00Z&granularity=daily", "granularity"),
        ("since=0001-01-02T00:00:00Z&until=9999-12-30T00:00:00Z&granularity=hourly", "granularity"),
        ("until=9999-12-30T00:00:00Z", "until"),
    ],
)
def test_windows_too_long_for_a_timeline_are_refused(client, query, field):
    response = ask(client, f"/api/v2/events/analytics?{query}")
    assert response.status_code == 422 and field in response.get_json()["error"]["details"]
    assert len(response.get_data()) < 1_000_000


def test_a_window_within_the_cap_still_answers(client):
    window = "since=2024-01-01T00:00:00Z&until=2026-01-01T00:00:00Z"
    response = ask(client, f"/api/v2/events/analytics?{window}")
    body = response.get_json()
    assert response.status_code == 200 and body["timelineGranularity"] == "daily"
    assert len(body["timeline"]) == 366 + 365 + 1  # until is inclusive: 2026-01-01 too


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=0001-01-01T00:00:00%2B14:00", "since"),
        ("until=9999-12-31T23:59:59-14:00", "until"),
        ("since=0001-01-01T00:00:00%2B00:01", "since"),
    ],
)
def test_dates_that_cannot_be_represented_in_utc_are_422(client, query, field):
    response = ask(client, f"/api/v2/events/analytics?{query}")
    assert response.status_code == 422
    assert list(response.get_json()["error"]["details"]) == [field]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v2/events/analytics?since=0001-01-01T00:00:00Z&compare=previous_week", "compare"),
        (
            "/api/v2/events/analytics?since=0001-01-01T00:00:00Z&until=0001-01-02T00:00:00Z"
            "&compare=previous_period",
            "compare",
        ),
        ("/api/v2/events/analytics?channel=discord%00", "channel"),
        ("/api/v2/events/analytics?channel=%00&allTime=true", "channel"),
        ("/api/v2/dashboard?channel=discord%00", "channel"),
        ("/api/v2/dashboard?channel=%00&compare=previous_week", "channel"),
    ],
)
def test_windows_before_year_one_and_nul_bytes_are_422(client, query, field):
    response = ask(client, query)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert list(response.get_json()["error"]["details"]) == [field]


def cursor_of(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


LOG_ID = "6f1c0a4e-2b7d-4c1a-9a34-0d2f5b8e9c11"


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of(f"2026-03-10T10:00:00+23:59|{LOG_ID}"),  # PostgreSQL: DataError, was a 500
        cursor_of(f"2026-03-10T10:00:00+00:00|{LOG_ID}"),
        cursor_of(f"2026-03-10T10:00:00Z|{LOG_ID}"),
        cursor_of(f"2026-03-10 10:00:00|{LOG_ID}"),
        cursor_of(f"20260310T100000|{LOG_ID}"),
        cursor_of(f"2026-03-10T10:00:00|{LOG_ID.upper()}"),
        cursor_of(f"2026-03-10T10:00:00|{{{LOG_ID}}}"),
        cursor_of(f"2026-03-10T10:00:00|{LOG_ID}") + "==",
        cursor_of(f"2026-03-10T10:00:00|{LOG_ID}") + "!",
        cursor_of(f"2026-03-10T10:00:00|{LOG_ID}|x"),
        cursor_of(f"2026-03-10T10:00:00\x00|{LOG_ID}"),
    ],
)
def test_only_cursors_the_api_issues_are_accepted(client, cursor):
    response = ask(client, "/api/v2/automation-logs", query_string={"cursor": cursor})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert list(response.get_json()["error"]["details"]) == ["cursor"]


def test_an_issued_cursor_still_pages(client):
    response = ask(
        client,
        "/api/v2/automation-logs",
        query_string={"cursor": cursor_of(f"2026-03-10T10:00:00|{LOG_ID}")},
    )
    assert response.status_code == 200


ROUTES = sorted(
    (SPEC["servers"][0]["url"] + path, set(item)) for path, item in SPEC["paths"].items()
)


@pytest.mark.parametrize(("path", "methods"), ROUTES)
def test_every_route_answers_405_with_allow(client, path, methods):
    response = client.delete(path, headers=HEADERS)
    assert response.status_code == 405
    allowed = {m.strip().lower() for m in response.headers["Allow"].split(",")}
    assert methods <= allowed and "delete" not in allowed
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_414_and_431_are_envelopes(client):
    long_url = client.get("/api/v2/health?pad=" + "a" * 33_000)
    assert long_url.status_code == 414
    assert long_url.get_json()["error"]["code"] == "URI_TOO_LONG"
    big = client.get("/api/v2/health", headers={"X-Pad": "b" * 20_000})
    assert big.status_code == 431
    assert big.get_json()["error"]["code"] == "HEADERS_TOO_LARGE"


def test_no_redirect_echoes_the_key(tmp_path):
    served = Served(build_app(f"sqlite:///{tmp_path / 'r.db'}"))
    try:
        for path in ("//dashboard", "/api/v2//dashboard", "//api/v2/dashboard"):
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
                sock.sendall(f"GET {path}?api_key=SECRET HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            assert not answer.startswith(b"HTTP/1.1 30"), answer[:200]
            assert b"SECRET" not in answer
    finally:
        served.close()
