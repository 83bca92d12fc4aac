"""A host without the [live] and [postgres] extras: the plugin loads and serves."""

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def _wheel_files(project: Path, into: Path) -> tuple[list[str], str]:
    """The files of ``project``'s wheel and its entry points, as pip would install them."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, str(project), "-w", str(into)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = into.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        return names, archive.read(points).decode()


def test_a_host_installing_the_plugin_gets_neither_the_reference_host_nor_its_command(tmp_path):
    plugin, plugin_points = _wheel_files(ROOT, tmp_path / "plugin")
    assert any(n.startswith("omni_dashboard_plugin/") for n in plugin)
    assert not [n for n in plugin if n.startswith("host_example/")]
    assert "omni-host" not in plugin_points
    assert "omni_dashboard = omni_dashboard_plugin.plugin" in plugin_points
    assert "omni-dashboard = omni_dashboard_plugin.rollups.commands:cli" in plugin_points

    host, host_points = _wheel_files(ROOT / "host_example", tmp_path / "host")
    assert "host_example/static/dashboard.html" in host and "host_example/app.py" in host
    assert not [n for n in host if n.startswith("omni_dashboard_plugin/")]
    assert "omni-host = host_example.cli:main" in host_points
