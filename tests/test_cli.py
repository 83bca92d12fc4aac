"""The omni-host command: deterministic seeding, plugin listing, spec output, config errors."""

import json

import pytest
from sqlalchemy import create_engine, select

from host_example.cli import main
from host_example.tables import automation_logs, dead_letter_events, omni_events


def dump(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        return [
            conn.execute(select(table).order_by(table.c.id)).all()
            for table in (omni_events, automation_logs, dead_letter_events)
        ]


def test_seed_is_deterministic_for_a_seed_and_an_end(tmp_path, monkeypatch, capsys):
    runs = []
    for name in ("a", "b", "c"):
        url = f"sqlite:///{tmp_path / name}.db"
        monkeypatch.setenv("OMNI_DATABASE_URL", url)
        seed = "9" if name != "c" else "10"
        main(
            [
                "seed",
                "--events",
                "500",
                "--days",
                "3",
                "--seed",
                seed,
                "--now",
                "2026-03-10T12:00:00",
            ]
        )
        runs.append(dump(url))
    assert "seeded" in capsys.readouterr().out
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    events = runs[0][0]
    assert len(events) == 500
    assert {e.channel for e in events} == {
        "whatsapp-baileys",
        "whatsapp-cloud",
        "discord",
        "slack",
        "telegram",
    }
    assert {e.direction for e in events} == {"inbound", "outbound"}
    assert {e.status for e in events} >= {"completed", "failed", "received"}
    assert {d.status for d in runs[0][2]} == {"pending", "retrying", "resolved", "abandoned"}


def test_plugins_lists_providers_and_their_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMNI_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("OMNI_DASHBOARD_PROVIDERS", "rates,timeline")
    main(["plugins"])
    out = capsys.readouterr().out
    assert "omni_dashboard" in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert lines["rates"] == "enabled" and lines["breakdowns"] == "disabled"


def test_openapi_writes_the_spec(tmp_path, capsys):
    target = tmp_path / "spec.json"
    main(["openapi", str(target)])
    spec = json.loads(target.read_text())
    assert spec["servers"] == [{"url": "/api/v2"}] and "/dashboard" in spec["paths"]


def test_a_bad_setting_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("OMNI_DASHBOARD_PROVIDERS", "rates,nope")
    with pytest.raises(SystemExit) as info:
        main(["plugins"])
    assert "nope" in str(info.value) and "installed providers" in str(info.value)


@pytest.mark.parametrize("empty", ["", " ", ",", " , "])
def test_an_empty_provider_list_stops_with_a_message(tmp_path, monkeypatch, empty):
    """Not a silent ``none``: the message says what to write."""
    monkeypatch.setenv("OMNI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("OMNI_DASHBOARD_PROVIDERS", empty)
    with pytest.raises(SystemExit) as info:
        main(["plugins"])
    assert "OMNI_DASHBOARD_PROVIDERS" in str(info.value) and "'none'" in str(info.value)


@pytest.mark.slow  # rollups refreshed over days of history, seconds each
def test_rollups_refresh_and_reset_from_the_command_line(tmp_path, monkeypatch, capsys):
    """seed resets, refresh rolls up to now - horizon, a second refresh finds nothing."""
    from omni_dashboard_plugin.rollups.kinds import state

    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("OMNI_DATABASE_URL", url)
    with pytest.raises(SystemExit, match=r"rollups are off .*set OMNI_DASHBOARD_ROLLUPS=on"):
        main(["rollups", "refresh"])
    monkeypatch.setenv("OMNI_DASHBOARD_ROLLUPS", "on")
    main(["seed", "--events", "300", "--days", "2"])
    main(["rollups", "refresh"])
    assert "watermark" in capsys.readouterr().out
    main(["rollups", "refresh"])
    assert "rolled 0 chunks" in capsys.readouterr().out
    engine = create_engine(url)
    for command in (["seed", "--events", "300", "--days", "2"], ["rollups", "reset"]):
        main(["rollups", "refresh"])
        with engine.connect() as conn:
            assert conn.execute(select(state)).all() != []
        main(command)
        with engine.connect() as conn:
            assert conn.execute(select(state)).all() == []
