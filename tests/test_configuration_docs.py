"""docs/configuration.md shows the settings table of config.py, row for row."""

import re
from pathlib import Path

import pytest

from omni_dashboard_plugin.config import BY_KEY, SETTINGS, ConfigError, DashboardConfig

from .conftest import API_KEY, build_app

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(OMNI_DASHBOARD_[A-Z_]+)` \|")


def test_every_setting_has_its_row_in_the_docs():
    lines = set(DOCS.read_text().splitlines())
    missing = [setting.doc_row() for setting in SETTINGS if setting.doc_row() not in lines]
    assert not missing, "docs/configuration.md lacks (or words differently):\n" + "\n".join(missing)


def test_every_documented_plugin_key_is_a_setting():
    documented = {m.group(1) for line in DOCS.read_text().splitlines() if (m := ROW.match(line))}
    assert documented - set(BY_KEY) == set()
    assert {key for key in BY_KEY if key.startswith("OMNI_DASHBOARD_")} == documented


def test_defaults_are_the_table_s():
    """Settings read from an empty config are the dataclasses' defaults, and both are the
    table's parsed defaults."""
    assert DashboardConfig.from_mapping({}) == DashboardConfig()
    assert DashboardConfig().stream.max_types == BY_KEY["OMNI_DASHBOARD_STREAM_MAX_TYPES"].value


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_max_types_stops_start_up(value):
    with pytest.raises(ConfigError, match="OMNI_DASHBOARD_STREAM_MAX_TYPES"):
        DashboardConfig.from_mapping({"OMNI_DASHBOARD_STREAM_MAX_TYPES": value})


def test_max_types_can_be_set():
    app = build_app("sqlite://", OMNI_DASHBOARD_STREAM_MAX_TYPES=2)
    client = app.test_client()
    headers = {"x-api-key": API_KEY}
    response = client.get("/api/v2/events/stream?types=a,b,c", headers=headers)
    assert response.status_code == 422
    assert "types" in response.get_json()["error"]["details"]
    spec = client.get("/openapi.json").get_json()
    stream = spec["paths"]["/events/stream"]["get"]["parameters"]
    assert any("at most 2" in p.get("description", "") for p in stream)
