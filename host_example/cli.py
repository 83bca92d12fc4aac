"""``omni-host``: seed, run and inspect the example host."""

import argparse
import json
import sys
import time
from datetime import datetime

from omni_dashboard_plugin.config import ConfigError

from . import create_app
from .request_log import RedactingRequestHandler
from .seed import SeedPlan, seed
from .simulator import TrafficSimulator


def _app(overrides=None):
    try:
        return create_app(overrides)
    except ConfigError as exc:
        sys.exit(f"omni-host: configuration error: {exc}")


def cmd_seed(args) -> None:
    app = _app({"OMNI_DB_STATEMENT_TIMEOUT_MS": 0})  # one COPY of every row may take minutes
    plan = SeedPlan(
        events=args.events,
        days=args.days,
        seed=args.seed,
        now=datetime.fromisoformat(args.now) if args.now else None,
    )
    started = time.perf_counter()
    counts = seed(app.extensions["omni_host"].engine, plan)
    rollups = app.extensions["omni_dashboard"].rollups
    if rollups.active:
        rollups.reset()  # the whole history was replaced
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    print(f"seeded {summary} in {elapsed:.1f} s")


def cmd_rollups(args) -> None:
    rollups = _app().extensions["omni_dashboard"].rollups
    if not rollups.active:
        sys.exit(
            f"omni-host: rollups are off (OMNI_DASHBOARD_ROLLUPS={rollups.settings.mode} on "
            f"{rollups.engine.dialect.name}); set OMNI_DASHBOARD_ROLLUPS=on to use them"
        )
    if args.action == "reset":
        rollups.reset()
        print("rollups reset; the next refresh rolls everything up again")
        return
    started = time.perf_counter()
    report = rollups.refresh()
    elapsed = time.perf_counter() - started
    if report.busy:
        print(f"another process is refreshing; stopped after {report.chunks} chunks")
    print(
        f"rolled {report.chunks} chunks in {elapsed:.1f} s; watermark {report.watermark} "
        f"(horizon {rollups.settings.horizon_minutes} min)"
    )


def cmd_run(args) -> None:
    app = _app()
    url = f"http://{args.host}:{args.port}"
    key = app.config["OMNI_API_KEY"]
    print(f"Omni example host on {url}/api/v2  (OpenAPI: {url}/openapi.json)")
    origin = (
        "generated for this run" if app.config.get("OMNI_API_KEY_GENERATED") else "OMNI_API_KEY"
    )
    print(f"API key ({origin}): {key}")
    print(f"Dashboard: {url}/dashboard#key={key}")
    print(f"Try: curl -H 'x-api-key: {key}' {url}/api/v2/event-ops/metrics")
    print(f"Live feed: curl -N '{url}/api/v2/events/stream?api_key={key}'")
    if args.simulate:
        state = app.extensions["omni_host"]
        feed = app.extensions["omni_dashboard"].live
        TrafficSimulator(state.engine, feed, state.clock, rate=args.simulate).start()
        print(f"Simulating about {args.simulate:g} events per second")
    try:
        app.run(
            host=args.host,
            port=args.port,
            threaded=True,
            use_reloader=False,
            request_handler=RedactingRequestHandler,
        )
    finally:
        app.extensions["omni_dashboard"].stopping(app)


def cmd_plugins(args) -> None:
    app = _app()
    dashboard = app.extensions["omni_dashboard"]
    names = dashboard.registry.plugin_manager.list_name_plugin()
    print("plugins:")
    for name, plugin in names:
        print(f"  {name}  ({getattr(plugin, '__name__', type(plugin).__name__)})")
    print("providers:")
    for name, provider in sorted(dashboard.registry.installed.items()):
        state = "enabled" if name in dashboard.registry.enabled else "disabled"
        fields = ", ".join(provider.fields)
        print(f"  {name:<12} {state:<8} {provider.endpoint:<20} {fields}")
        if provider.description:
            print(f"  {'':<12} {provider.description.replace('``', '`')}")


def spec_json(app) -> str:
    """The app's OpenAPI document as stable, sorted JSON."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return json.dumps(api.spec.to_dict(), indent=2, sort_keys=True) + "\n"


def cmd_openapi(args) -> None:
    overrides = {"OMNI_API_KEY": "unused", "OMNI_DATABASE_URL": "sqlite://"}
    if args.bare:
        overrides["OMNI_LOAD_PLUGINS"] = False
    else:
        overrides["OMNI_DASHBOARD_PROVIDERS"] = "all"
    text = spec_json(_app(overrides))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.output}")


def main(argv=None) -> None:
    """Entry point of the ``omni-host`` command."""
    parser = argparse.ArgumentParser(prog="omni-host", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_seed = sub.add_parser("seed", help="replace the data with realistic generated traffic")
    p_seed.add_argument("--events", type=int, default=10_000, help="events to generate")
    p_seed.add_argument("--days", type=int, default=7, help="spread over the last N days")
    p_seed.add_argument("--seed", type=int, default=42, help="random seed (deterministic)")
    p_seed.add_argument("--now", help="end of the window, ISO 8601 UTC (default: now)")
    p_seed.set_defaults(func=cmd_seed)

    p_run = sub.add_parser("run", help="serve the API; prints the URL and the API key")
    p_run.add_argument("--host", default="127.0.0.1")
    p_run.add_argument("--port", type=int, default=5000)
    p_run.add_argument(
        "--simulate",
        type=float,
        nargs="?",
        const=2.0,
        default=0.0,
        metavar="RATE",
        help="write and publish live traffic, RATE events per second (default 2)",
    )
    p_run.set_defaults(func=cmd_run)

    p_rollups = sub.add_parser("rollups", help="maintain the dashboard's rollup tables")
    p_rollups.add_argument(
        "action",
        choices=("refresh", "reset"),
        help="refresh: roll up closed slots (for cron); reset: drop them after history changed",
    )
    p_rollups.set_defaults(func=cmd_rollups)

    p_plugins = sub.add_parser("plugins", help="list loaded plugins and their providers")
    p_plugins.set_defaults(func=cmd_plugins)

    p_openapi = sub.add_parser("openapi", help="write the OpenAPI document as JSON")
    p_openapi.add_argument("output", help="file to write, or - for standard output")
    p_openapi.add_argument(
        "--bare", action="store_true", help="the host without plugins (the compatibility baseline)"
    )
    p_openapi.set_defaults(func=cmd_openapi)

    args = parser.parse_args(argv)
    if getattr(args, "events", 1) < 1 or getattr(args, "days", 1) < 1:
        parser.error("--events and --days must be at least 1")
    args.func(args)
