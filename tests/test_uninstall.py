"""`flask omni-dashboard uninstall` leaves the database as it was before the plugin: its
catalog, compared before the install and after the uninstall, in every mode the host may
have switched to (`none` and rollups off included)."""

import subprocess

import pytest
from sqlalchemy import Text, cast, column, create_engine, func, select, table, text
from sqlalchemy.dialects.postgresql import REGCLASS

from .conftest import build_app
from .test_install import flask_command

# Every test runs the `flask` command in a subprocess, as an operator does.
pytestmark = pytest.mark.slow

MODES = {
    "providers none": {"OMNI_DASHBOARD_PROVIDERS": "none"},
    "rollups off": {"OMNI_DASHBOARD_ROLLUPS": "off"},
    "rollups on": {"OMNI_DASHBOARD_ROLLUPS": "on"},
}
# What an earlier release of the plugin left in the database (an older layout's table,
# trigger and SECURITY DEFINER function), which `install` leaves to the operator.
EARLIER = {
    "postgresql": [
        "CREATE TABLE omni_dashboard_r1_events_hour (slot bigint PRIMARY KEY, n bigint)",
        "CREATE FUNCTION omni_dashboard_r1_events_keep() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER AS $$BEGIN RETURN NULL; END$$",
    ],
    "sqlite": [
        "CREATE TABLE omni_dashboard_r1_events_hour (slot bigint PRIMARY KEY, n bigint)",
        "CREATE INDEX omni_dashboard_r1_events_hour_n ON omni_dashboard_r1_events_hour (n)",
    ],
}


def catalog(url) -> set[tuple]:
    """Every relation, function, type, constraint and trigger of the current schema
    (PostgreSQL), or every object (SQLite)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                master = table("sqlite_master", column("type"), column("name"), column("tbl_name"))
                return set(conn.execute(select(master.c.type, master.c.name, master.c.tbl_name)))
            here = func.to_regnamespace(func.current_schema())
            found: set[tuple] = set()
            for catalog_name, name, namespace in (
                ("pg_class", "relname", "relnamespace"),
                ("pg_type", "typname", "typnamespace"),
                ("pg_constraint", "conname", "connamespace"),
            ):
                rows = table(catalog_name, column(name), column(namespace))
                names = conn.execute(select(rows.c[name]).where(rows.c[namespace] == here))
                found |= {(catalog_name, n) for n in names.scalars()}
            procs = table("pg_proc", column("oid"), column("proname"), column("pronamespace"))
            arguments = func.pg_get_function_identity_arguments(procs.c.oid)
            signatures = select(procs.c.proname, arguments).where(procs.c.pronamespace == here)
            found |= {("pg_proc", *signature) for signature in conn.execute(signatures)}
            triggers = table(
                "pg_trigger", column("tgname"), column("tgrelid"), column("tgisinternal")
            )
            on = cast(cast(triggers.c.tgrelid, REGCLASS), Text)
            found |= {
                ("pg_trigger", name, relation)
                for name, relation in conn.execute(
                    select(triggers.c.tgname, on).where(~triggers.c.tgisinternal)
                )
            }
            return found
    finally:
        engine.dispose()


def security_definers(url) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT proname FROM pg_proc WHERE prosecdef AND proname LIKE 'omni%'")
            )
            return set(found.scalars())
    finally:
        engine.dispose()


def flask(url, *args, **env):
    argv, environment = flask_command(url, *args)
    environment.update(env)
    return subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """A database holding Omni's tables (the host's) and none of the plugin's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'omni.db'}"
    else:
        url = request.getfixturevalue("own_pg_url")
    app = build_app(url, OMNI_DASHBOARD_ROLLUPS="off")
    app.extensions["omni_dashboard"].engine.dispose()
    return url


@pytest.mark.parametrize("mode", sorted(MODES))
def test_uninstall_restores_the_catalog_in_any_mode(empty_url, mode):
    before = catalog(empty_url)
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        for statement in EARLIER[conn.dialect.name]:
            conn.execute(text(statement))
    postgresql = engine.dialect.name == "postgresql"
    engine.dispose()

    installed = flask(empty_url, "install", OMNI_DASHBOARD_ROLLUPS="on")
    assert installed.returncode == 0, installed.stderr
    added = catalog(empty_url) - before
    assert {kind for kind, *_ in added} >= (
        {"pg_class", "pg_proc", "pg_trigger"} if postgresql else {"table", "index", "trigger"}
    )
    if postgresql:  # the trigger functions run as their owner
        assert len(security_definers(empty_url)) >= 2

    gone = flask(empty_url, "uninstall", **MODES[mode])
    assert gone.returncode == 0, gone.stderr
    assert catalog(empty_url) == before
    again = flask(empty_url, "uninstall", **MODES[mode])
    assert again.returncode == 0 and "nothing of the plugin's" in again.stdout


def test_refresh_under_none_says_why_it_has_nothing_to_do(empty_url):
    refused = flask(empty_url, "refresh", OMNI_DASHBOARD_PROVIDERS="none")
    assert refused.returncode != 0
    assert "OMNI_DASHBOARD_PROVIDERS=none" in refused.stderr
    assert "flask --app yourapp omni-dashboard uninstall" in refused.stderr
