"""The auth rule, constant-time comparison, key redaction, and documented limits."""

import logging

import pytest

from host_example import auth
from host_example.request_log import RedactingRequestHandler, redact

from .conftest import API_KEY, build_app
from .live_support import Served

OPEN = {"/api/v2/health", "/openapi.json"}
# Outside /api/v2 only the spec and the dashboard page's files are served (no /static route):
# they hold no data (the page asks for a key and calls the API with it).
OUTSIDE_API = {"/openapi.json", "/dashboard", "/dashboard.<any(css, js):kind>", "/favicon.ico"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return build_app(f"sqlite:///{tmp_path_factory.mktemp('sec') / 'sec.db'}")


def test_every_route_but_health_and_the_spec_needs_the_key(app):
    client = app.test_client()
    rules = [r for r in app.url_map.iter_rules() if "GET" in r.methods]
    paths = {r.rule for r in rules}
    assert {"/api/v2/dashboard", "/api/v2/events/stream", "/api/v2/events/ws"} <= paths
    assert {p for p in paths if not p.startswith("/api/v2/")} == OUTSIDE_API
    for path in sorted(p for p in paths if p.startswith("/api/v2/") or p in OPEN):
        response = client.get(path)
        if path in OPEN:
            assert response.status_code in (200, 503), path
        else:
            assert response.status_code == 401, path
            assert response.get_json()["error"]["code"] == "UNAUTHORIZED"


def protected_paths(app) -> list[str]:
    paths = {rule.rule for rule in app.url_map.iter_rules()}
    return sorted(p for p in paths if p.startswith("/api/v2/") and p not in OPEN)


def test_options_needs_the_key_like_get(app):
    client = app.test_client()
    for path in protected_paths(app):
        refused = client.options(path)
        assert refused.status_code == 401, path
        assert refused.get_json()["error"]["code"] == "UNAUTHORIZED"
        assert "Allow" not in refused.headers
        preflight = client.options(
            path,
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 401, path  # no CORS: a preflight is no exception
        allowed = client.options(path, headers={"x-api-key": API_KEY})
        assert allowed.status_code == 200 and "GET" in allowed.headers["Allow"], path
    assert client.options("/api/v2/health").status_code == 200


def test_the_page_files_are_served_where_documented_and_nowhere_else(app):
    client = app.test_client()
    for path in ("/dashboard", "/dashboard.css", "/dashboard.js", "/favicon.ico"):
        assert client.get(path).status_code == 200, path
    for path in ("/static/dashboard.js", "/static/dashboard.html", "/static/../app.py"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert missing.get_json()["error"]["code"] == "NOT_FOUND"


def test_the_key_is_compared_in_constant_time(app, monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    client = app.test_client()
    assert (
        client.get("/api/v2/dead-letters/stats", headers={"x-api-key": "nope"}).status_code == 401
    )
    assert client.get(f"/api/v2/dead-letters/stats?api_key={API_KEY}").status_code == 200
    assert calls == [(b"nope", API_KEY.encode()), (API_KEY.encode(), API_KEY.encode())]


def test_api_key_argument_never_reaches_the_request_log(app, caplog):
    server = Served.__new__(Served)
    from werkzeug.serving import make_server

    server.server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=RedactingRequestHandler
    )
    server.port = server.server.server_port
    import threading

    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            import urllib.request

            urllib.request.urlopen(
                f"http://127.0.0.1:{server.port}/api/v2/dead-letters/stats?x=1&api_key={API_KEY}"
            ).read()
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert "/api/v2/dead-letters/stats?x=1&api_key=[REDACTED]" in logged
        assert API_KEY not in logged
    finally:
        server.close()


def test_redaction_covers_every_position_and_case():
    assert redact("GET /a?api_key=s3cret HTTP/1.1") == "GET /a?api_key=[REDACTED] HTTP/1.1"
    assert redact("/a?b=1&API_KEY=s3cret&c=2") == "/a?b=1&API_KEY=[REDACTED]&c=2"
    assert "s3cret" not in redact("/a?api_key=s3cret&api_key=s3cret")


@pytest.mark.parametrize(
    ("name", "taken_as_the_key"),
    [
        ("api%5Fkey", True),
        ("api%5fkey", True),
        ("%61%70%69%5F%6B%65%79", True),
        ("api%255Fkey", False),  # encoded twice: werkzeug decodes once
        ("API%5FKEY", False),
    ],
)
def test_redaction_decodes_the_name_before_it_matches(app, name, taken_as_the_key):
    """Whatever spelling werkzeug decodes to ``api_key`` (and more) is redacted."""
    answer = app.test_client().get(f"/api/v2/dead-letters/stats?{name}={API_KEY}")
    assert answer.status_code == (200 if taken_as_the_key else 401)
    assert redact(f"GET /a?x=1&{name}=s3cret%26&y=2 HTTP/1.1") == (
        f"GET /a?x=1&{name}=[REDACTED]&y=2 HTTP/1.1"
    )
    assert "s3cret" not in redact(f"https://dash.example/?{name}=s3cret")
    nested = f"https://dash.example/login?next=%2Fdashboard%3F{name.replace('%', '%25')}%3Ds3cret"
    assert "s3cret" not in redact(nested)


def test_redaction_leaves_other_arguments_alone():
    for text in ("/a?xapi_key=1", "/a?q=api_key", "/a?api_keys=1", "/a?q=api%5Fkey&r=2"):
        assert redact(text) == text


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v2/automation-logs?limit=101", "limit"),
        ("/api/v2/events/analytics?since=2000-01-01T00:00:00Z&granularity=hourly", "granularity"),
        ("/api/v2/events/stream?types=" + ",".join(f"t{i}" for i in range(21)), "types"),
        ("/api/v2/events/stream?instanceId=" + "x" * 65, "instanceId"),
        (
            "/api/v2/events/stream?lastEventId=" + ",".join(f"S{i}=1" for i in range(17)),
            "lastEventId",
        ),
        ("/api/v2/dashboard?timezone=" + "A" * 65, "timezone"),
    ],
)
def test_limits_are_refused_with_validation_error(app, url, field):
    response = app.test_client().get(url, headers={"x-api-key": API_KEY})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "VALIDATION_ERROR" and field in body["error"]["details"]


def test_errors_never_echo_a_stack_trace_sql_or_the_key(tmp_path):
    app = build_app("postgresql://nobody@127.0.0.1:1/none", OMNI_LOAD_PLUGINS=False)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    for url in ("/api/v2/event-ops/metrics", f"/api/v2/automation-logs?api_key={API_KEY}"):
        text = client.get(url, headers={"x-api-key": API_KEY}).get_data(as_text=True)
        for leak in ("Traceback", "SELECT", "psycopg2", "127.0.0.1:1", API_KEY):
            assert leak not in text
