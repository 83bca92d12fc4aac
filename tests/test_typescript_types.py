"""TypeScript types generated from docs/openapi.json (openapi-typescript) compile, under
``tsc --strict``, a live-feed consumer (tests/js/feed_consumer.ts) and a consumer written the
way Omni's SDK and dashboard use the API (tests/js/sdk_consumer.ts: openapi-fetch on the
``/api/v2`` base, server-relative paths, Omni's schema names). A renamed schema, or paths
back under ``/api/v2``, fail it."""

import json

import pytest

from .node_support import JS_DIR, npx

pytestmark = pytest.mark.slow  # Node.js and the TypeScript compiler

SPEC = JS_DIR.parent.parent / "docs" / "openapi.json"
GENERATED = JS_DIR / "generated" / "omni.d.ts"


def compile_against(spec: dict, tmp_path) -> tuple[int, str]:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    generated = npx("openapi-typescript", str(path), "-o", str(GENERATED))
    assert generated.returncode == 0, generated.stderr
    checked = npx("tsc", "-p", "tsconfig.json")
    return checked.returncode, checked.stdout + checked.stderr


def renamed(spec: dict, old: str, new: str) -> dict:
    text = json.dumps(spec).replace(f'"{old}"', f'"{new}"').replace(f'/{old}"', f'/{new}"')
    return json.loads(text)


def test_a_renamed_schema_breaks_the_consumers(tmp_path):
    spec = json.loads(SPEC.read_text())
    for old in ("EventReceivedData", "HealthResponse", "Comparison", "DashboardPrevious"):
        code, output = compile_against(renamed(spec, old, old + "X"), tmp_path)
        assert code != 0 and old in output


def test_paths_back_under_api_v2_break_the_sdk_idiom(tmp_path):
    spec = json.loads(SPEC.read_text())
    spec.pop("servers")
    spec["paths"] = {f"/api/v2{path}": item for path, item in spec["paths"].items()}
    code, output = compile_against(spec, tmp_path)
    assert code != 0 and '"/event-ops/metrics"' in output


def test_both_consumers_compile_strictly_against_the_spec(tmp_path):
    code, output = compile_against(json.loads(SPEC.read_text()), tmp_path)
    assert code == 0, output
