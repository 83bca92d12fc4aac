"""TypeScript types generated from docs/openapi.json (openapi-typescript) compile a live-feed
consumer under ``tsc --strict`` (tests/js/feed_consumer.ts); a renamed schema fails it."""

import json

from .node_support import JS_DIR, npx

SPEC = JS_DIR.parent.parent / "docs" / "openapi.json"
GENERATED = JS_DIR / "generated" / "omni.d.ts"


def compile_against(spec_path) -> tuple[int, str]:
    generated = npx("openapi-typescript", str(spec_path), "-o", str(GENERATED))
    assert generated.returncode == 0, generated.stderr
    checked = npx("tsc", "-p", "tsconfig.json")
    return checked.returncode, checked.stdout + checked.stderr


def test_a_renamed_schema_breaks_the_consumer(tmp_path):
    text = SPEC.read_text().replace('"EventReceivedData"', '"EventReceivedPayload"')
    text = text.replace("/EventReceivedData", "/EventReceivedPayload")
    renamed = tmp_path / "renamed.json"
    renamed.write_text(text)
    json.loads(text)  # still a valid document
    code, output = compile_against(renamed)
    assert code != 0 and "EventReceivedData" in output


def test_the_live_feed_consumer_compiles_strictly_against_the_spec():
    code, output = compile_against(SPEC)
    assert code == 0, output
