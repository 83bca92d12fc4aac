"""schemathesis' own runner (every phase: examples, coverage, fuzzing, stateful) with every
check but positive_data_acceptance, against the served host on SQLite and PostgreSQL.
Its checks that send requests of their own (unsupported methods with Allow, ignored auth,
...) run here, which the in-process fuzz test does not do. Examples per operation: a share
of the Hypothesis profile's (20 under ``full``); ``OMNI_SCHEMATHESIS_EXAMPLES=100`` runs 100
(``st run -n 100``)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import API_KEY, examples
from .live_support import Served
from .test_fuzz import fuzz_app

pytestmark = pytest.mark.slow  # schemathesis' runner

GENERATED: dict[str, int] = {}
EXAMPLES = os.environ.get("OMNI_SCHEMATHESIS_EXAMPLES") or str(examples(0.2))


def test_schemathesis_finds_nothing(db_url):
    app = fuzz_app(db_url)
    served = Served(app)
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "run",
                f"http://127.0.0.1:{served.port}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "-H",
                f"x-api-key: {API_KEY}",
                "--max-examples",
                EXAMPLES,
                "--seed",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        app.extensions["omni_dashboard"].live.stop()
        served.close()
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    found = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert found and found.group(1) == found.group(2), summary
    GENERATED[db_url.split(":", 1)[0]] = int(found.group(1))
