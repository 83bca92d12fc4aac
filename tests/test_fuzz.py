"""schemathesis against the served OpenAPI document: no 5xx, only documented answers.

Every operation of docs/openapi.json (the served document, see test_compat.py), with
generated valid and malformed arguments, with and without the API key, on SQLite and
PostgreSQL, with every provider on. The seed is fixed (derandomize). All of schemathesis's
checks run but ``positive_data_acceptance``: some arguments carry meaning a JSON schema
cannot state (an opaque cursor, an IANA zone name, since <= until, the bucket cap), and
their refusal with VALIDATION_ERROR is documented behaviour, not a defect.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from host_example.seed import SeedPlan

from . import wild_data
from .conftest import API_KEY, NOW, build_app, examples
from .data import seeded

pytestmark = pytest.mark.slow  # schemathesis

SPEC = json.loads((Path(__file__).resolve().parent.parent / "docs" / "openapi.json").read_text())
OPERATIONS = sorted(
    (path, method.upper(), bool(operation.get("parameters")))
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
)
LEAKS = ("Traceback", "SELECT ", "psycopg2", "sqlalchemy", API_KEY)
SENT: Counter = Counter()
load_all_checks()
# Every check schemathesis has (including those that send requests of their own:
# unsupported_method, ignored_auth, ...), except positive_data_acceptance: a valid-looking
# window can still be refused (a timeline over its cap, a date past year 9999 in UTC).
CHECKED = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]


def fuzz_app(db_url):
    """The host as the fuzzers meet it: seeded (generated and wild rows), uncached, streams
    that end after 30 ms."""
    app = build_app(
        db_url,
        OMNI_DASHBOARD_STREAM_LIFETIME_MS=30,
        OMNI_DASHBOARD_STREAM_HEARTBEAT=1,
        OMNI_DASHBOARD_CACHE_SECONDS=0,
        PROPAGATE_EXCEPTIONS=False,
    )
    engine = app.extensions["omni_host"].engine
    seeded(engine, SeedPlan(events=300, days=2, now=NOW))
    wild_data.load(engine, replace=False)  # and the rows real databases hold
    return app


@pytest.fixture(scope="module")
def fuzz_schema(db_url):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app(db_url))


def _check(case):
    for headers in ({"x-api-key": API_KEY}, {}):
        response = case.call(headers=headers)
        SENT[response.status_code] += 1
        assert response.status_code < 500 or response.status_code == 503, response.text
        for leak in LEAKS:
            assert leak not in response.text, leak
        case.validate_response(response, headers=headers, checks=CHECKED)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("path", "method", "has_parameters"), OPERATIONS)
def test_operation_keeps_its_documented_promises(fuzz_schema, path, method, has_parameters, mode):
    if mode == GenerationMode.NEGATIVE and not has_parameters:
        pytest.skip("no parameters to malform")
    operation = fuzz_schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=examples(0.3),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        _check(case)

    run()
