"""A host without the [live] and [postgres] extras: the plugin loads and serves."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the distributions

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


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_second_host_passes_on_the_installed_wheel(tmp_path):
    """The sdist and wheel build (`python -m build`) and pass `twine check`; the wheel's
    `postgres` extra brings psycopg 3 (a plain postgresql:// URL) and psycopg2; installed
    with it into a fresh venv, the second host's tests pass there, run from a copy outside
    the repository (so nothing of it is on sys.path): all of them on SQLite, and on
    PostgreSQL the one that serves it through psycopg 3 (the suite runs the rest there on
    the repository's code, which is the same)."""
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = archive.read(metadata).decode()
    assert 'psycopg[binary]>=3.1; extra == "postgres"' in requires
    assert 'psycopg2-binary>=2.9; extra == "postgres"' in requires

    # Nothing of the checkout on the path: pip would take it for the installed package.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[postgres]", "pytest"], env=env)
    run = tmp_path / "run"
    shutil.copytree(
        ROOT / "tests" / "second_host",
        run / "second_host",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    found = _run(
        [python, "-c", "import omni_dashboard_plugin as p; print(p.__file__)"], cwd=run, env=env
    )
    assert found.stdout.strip().startswith(str(venv))
    chosen = "sqlite or test_postgresql_runs_on_both_drivers"
    pytest_run = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", chosen]
    result = _run([*pytest_run, "second_host"], cwd=run, env=env)
    assert " passed" in result.stdout and " failed" not in result.stdout
