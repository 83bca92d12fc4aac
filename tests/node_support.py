"""tests/js: Node.js packages the tests run (eventsource, openapi-typescript, typescript),
installed from tests/js/package-lock.json on first use."""

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from .conftest import IN_CI

JS_DIR = Path(__file__).resolve().parent / "js"
_lock = threading.Lock()


def node_packages() -> Path:
    """tests/js with its node_modules (``npm ci`` the first time); skipped (failed under
    CI=true) without node and npm."""
    with _lock:
        if not (JS_DIR / "node_modules" / ".package-lock.json").exists():
            npm = shutil.which("npm")
            if npm is None or shutil.which("node") is None:
                reason = "Node.js and npm are needed for tests/js"
                pytest.fail(f"CI=true: {reason}") if IN_CI else pytest.skip(reason)
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=JS_DIR,
                check=True,
                capture_output=True,
                timeout=600,
            )
    return JS_DIR


def npx(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a tool of tests/js's node_modules in tests/js."""
    binary = node_packages() / "node_modules" / ".bin" / args[0]
    return subprocess.run(
        [str(binary), *args[1:]], cwd=JS_DIR, capture_output=True, text=True, timeout=timeout
    )
