"""``flask omni-dashboard``: the operator's commands for the plugin's tables.

Registered through Flask's ``flask.commands`` entry point, so that they are there for
any host app with the plugin installed, even one whose start-up stops because the
tables are missing: ``install`` loads the app without that check.
"""

import contextlib
import sys
import time

import click
from flask.cli import AppGroup, ScriptInfo, pass_script_info
from sqlalchemy import exc as sa_exc

from ..sql.standby import ReadOnlyDatabase
from .refresh import RefreshBusy
from .service import COMMAND, EXTENSION_KEY, INSTALL_HINT, Rollups, installing

cli = AppGroup("omni-dashboard", help="The dashboard plugin's rollup tables.")


def _rollups(info: ScriptInfo, *, wanted: bool = True, installed: bool = False) -> Rollups:
    """The app's rollups, checked without requiring the tables; unless ``wanted`` is
    false, rollups must be on here (and installed, with ``installed``)."""
    with installing():
        app = info.load_app()
        rollups = app.extensions.get(EXTENSION_KEY)
        if rollups is None:
            raise click.ClickException(
                "this app does not use the dashboard plugin (no Dashboard.init_app ran)"
            )
        rollups.start()
    if wanted and not rollups.wanted:
        raise click.ClickException(
            f"rollups are off here ({rollups.off_reason}): set OMNI_DASHBOARD_ROLLUPS=on to "
            f"use them; `{COMMAND} uninstall` drops their tables in any mode"
        )
    if installed and not rollups.active:
        raise click.ClickException(f"the rollup tables are not installed: {INSTALL_HINT}")
    return rollups


@contextlib.contextmanager
def _on_the_primary():
    """A command that writes, run against a hot standby, stops with what to do instead."""
    try:
        yield
    except ReadOnlyDatabase as exc:
        raise click.ClickException(f"{exc}: point OMNI_DATABASE_URL at the primary") from exc


@cli.command("install", with_appcontext=False)
@pass_script_info
def install_command(info: ScriptInfo) -> None:
    """Create the rollup tables and the dead-letter triggers (idempotent)."""
    rollups = _rollups(info)
    with _on_the_primary():
        rollups.check_writable()
    if not rollups.install():
        raise click.ClickException("the rollup tables could not be created (see the warning)")
    click.echo(f"rollup tables installed; `{COMMAND} refresh` fills them")


@cli.command("refresh", with_appcontext=False)
@click.option(
    "--every",
    type=click.FloatRange(min=1, min_open=False),
    default=None,
    metavar="SECONDS",
    help="Run on, a refresh every SECONDS (a sidecar; a refresh fails only for its turn). "
    "Folding the tail every 1 to 30 s (the more writes, the oftener) keeps reads "
    "under ingest fast.",
)
@pass_script_info
def refresh_command(info: ScriptInfo, every: float | None) -> None:
    """Roll up every closed slot before now - horizon (for cron, or run on with --every)."""
    rollups = _rollups(info, installed=True)
    if every is None:
        with _on_the_primary():
            _report(rollups.refresh())
        return
    while True:
        began = time.monotonic()
        try:
            _report(rollups.refresh())
        except sa_exc.DBAPIError as exc:
            click.echo(f"refresh failed, next try in {every:g} s: {exc.orig}", err=True)
        except ReadOnlyDatabase as exc:  # a primary demoted: its successor's sidecar refreshes
            click.echo(f"no refresh, next try in {every:g} s: {exc}", err=True)
        time.sleep(max(0.0, every - (time.monotonic() - began)))


def _report(report) -> None:
    if report.busy:
        click.echo(f"another process is refreshing; stopped after {report.chunks} chunks")
    else:
        click.echo(f"rolled {report.chunks} chunks; watermark {report.watermark}")
    sys.stdout.flush()


@cli.command("reset", with_appcontext=False)
@pass_script_info
def reset_command(info: ScriptInfo) -> None:
    """Drop the rolled rows (after history was rewritten); the next refresh starts over."""
    with _on_the_primary():
        try:
            _rollups(info, installed=True).reset()
        except RefreshBusy as exc:
            raise click.ClickException(f"{exc} (nothing was reset)") from exc
    click.echo("rollups reset; the next refresh rolls everything up again")


@cli.command("uninstall", with_appcontext=False)
@pass_script_info
def uninstall_command(info: ScriptInfo) -> None:
    """Drop every object of the plugin (triggers, functions, tables), in any mode."""
    with _on_the_primary():
        dropped = _rollups(info, wanted=False).uninstall()
    for statement in dropped:
        click.echo(statement)
    click.echo(
        "the plugin's tables, triggers and functions are dropped; set "
        "OMNI_DASHBOARD_ROLLUPS=off (or the next install creates them again)"
        if dropped
        else "nothing of the plugin's was installed here"
    )
