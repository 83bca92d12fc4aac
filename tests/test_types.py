"""The type checker passes on the plugin package (mypy, configured in pyproject.toml), so
that the README's test command covers what CI's `mypy omni_dashboard_plugin` checks."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a process, and tens of seconds of checking
def test_mypy_passes_on_the_plugin():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "omni_dashboard_plugin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
