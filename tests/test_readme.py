"""The README's two commands stay true: CI runs the test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_the_demo_and_the_test_command():
    demo, tests = _commands()[:2]
    assert "pip install -e . -e ./host_example" in demo and "omni-host run" in demo
    assert tests.endswith("pytest -n auto") and "[test]" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    assert _commands()[1] in (ROOT / ".ci" / "run").read_text()
