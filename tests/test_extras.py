"""A host without the [live] and [postgres] extras: the plugin loads and serves."""

import json
import subprocess
import sys
import textwrap

# Runs with nats-py, flask-sock and psycopg2 made unimportable, as without the extras.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    for name in ("nats", "flask_sock", "psycopg2"):
        sys.modules[name] = None
    from omni_dashboard_plugin.config import ConfigError
    from host_example import create_app

    base = {"OMNI_DATABASE_URL": "sqlite://", "OMNI_API_KEY": "k"}
    app = create_app(base)
    client = app.test_client()
    dashboard = client.get("/api/v2/dashboard", headers={"x-api-key": "k"})
    stream = client.get("/api/v2/events/stream", headers={"x-api-key": "k"}, buffered=False)
    first = next(stream.response).decode()
    stream.close()
    paths = client.get("/openapi.json").get_json()["paths"]
    try:
        create_app({**base, "OMNI_NATS_URL": "nats://127.0.0.1:4222"})
        refused = ""
    except ConfigError as exc:
        refused = str(exc)
    print(json.dumps({
        "dashboard": dashboard.status_code,
        "stream": stream.status_code,
        "first": first,
        "ws": "/events/ws" in paths,
        "sse": "/events/stream" in paths,
        "refused": refused,
    }))
    """
)


def test_the_plugin_serves_without_the_extras():
    """Without nats-py, flask-sock and psycopg2: the dashboard and the SSE stream (on the
    in-process bus) work, there is no WebSocket route in the app or its document, and
    OMNI_NATS_URL stops start-up with the extra to install."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["dashboard"] == 200 and found["stream"] == 200
    assert "connected" in found["first"]
    assert found["sse"] and not found["ws"]
    assert "pip install 'omni-dashboard-plugin[live]'" in found["refused"]
