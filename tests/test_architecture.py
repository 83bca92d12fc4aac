"""The layers of docs/architecture.md, checked by import-linter's `lint-imports`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # import-linter's lint-imports

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_keeps_its_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("sql/tables.py", "from ..rollups import kinds", "layers point one way"),
        ("rollups/kinds.py", "from ..queries import events", "layers point one way"),
        ("live/hub.py", "from ..sql import tables", "live feed knows nothing"),
        ("provider.py", "from .rollups import reader", "Reader, not on the rollups"),
        ("grid.py", "from . import summary", "building blocks"),
    ],
)
def test_a_lower_layer_importing_a_higher_one_fails(tmp_path, module, line, broken):
    """A copy of the plugin where one module imports against the layers: lint-imports
    fails and names the contract."""
    copy = tmp_path / "omni_dashboard_plugin"
    shutil.copytree(ROOT / "omni_dashboard_plugin", copy, ignore=shutil.ignore_patterns("*.pyc"))
    target = copy / module
    target.write_text(f"{line}  # noqa\n" + target.read_text())
    result = _lint(tmp_path, pythonpath=tmp_path)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout
