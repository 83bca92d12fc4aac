"""What a host calls once to adopt the contract.

A host describes the endpoints it lets providers extend, then::

    dashboard = Dashboard(engine, endpoints={"event-ops.metrics": Endpoint(EventMetricsSchema)})
    dashboard.init_app(app)               # validates config and providers, builds schemas
    ResponseSchema = dashboard.response_schema("event-ops.metrics")
    ...                                   # the host registers its blueprints
    dashboard.register_blueprints(app, api)
    dashboard.started(app)
    base = dashboard.base("event-ops.metrics", lambda: host_payload(conn, now),
                          connection=conn, now=now)
    payload = dashboard.extend("event-ops.metrics", base, connection=conn, args=args, now=now)

With no plugin installed, or every provider disabled, ``response_schema`` and
``arguments_schema`` return the host's own schema classes and ``extend`` returns the base
payload unchanged, so every response stays byte-for-byte what it was. ``base`` returns
the host's own payload, from a plugin's accelerated equivalent only while rollups serve
reads (docs/rollups.md).
"""

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pluggy
from flask import g
from flask_smorest import abort
from marshmallow import Schema

from . import hookspecs
from .config import ConfigError, DashboardConfig
from .facts import HostFacts
from .live.feed import LiveFeed
from .metrics.process import ProcessMetrics
from .provider import InvalidArgument, Provider, ProviderContext
from .rollups.reader import RawReader, RollupReader
from .rollups.service import Rollups
from .sql.snapshot import reads_one_snapshot, snapshot

EXTENSION_KEY = "omni_dashboard"


def utcnow() -> datetime:
    """The current instant as a naive UTC datetime (how Omni stores timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint the host lets providers extend: its response and argument schemas."""

    response: type[Schema]
    arguments: type[Schema] | None = None


def make_plugin_manager(
    load_entrypoints: bool = True, plugins: Iterable = ()
) -> pluggy.PluginManager:
    """A plugin manager with the ``omni`` hookspecs, the entry points and extra plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def _extend_schema(base: type[Schema], extra: Mapping) -> type[Schema]:
    if not extra:
        return base
    # Same class name: the OpenAPI component keeps its name and gains the fields.
    return type(base.__name__, (base,), dict(extra))


class Dashboard:
    """The host's handle on the plugin contract (one per app).

    ``engine`` is the host's SQLAlchemy engine, ``endpoints`` the endpoints providers may
    extend, ``clock`` returns the naive-UTC ``now``, and ``facts`` returns the host's
    :class:`HostFacts` (health and engine state) for GET /api/v2/dashboard, which is only
    served when the host gives it.
    """

    def __init__(
        self,
        engine,
        endpoints: Mapping[str, Endpoint],
        *,
        clock: Callable[[], datetime] = utcnow,
        facts: Callable[[], HostFacts] | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ):
        self.engine = engine
        self.facts = facts
        self.endpoints = dict(endpoints)
        self.clock = clock
        self.plugin_manager = plugin_manager or make_plugin_manager()
        self.config: DashboardConfig | None = None
        self.installed: dict[str, Provider] = {}
        self.enabled: dict[str, Provider] = {}
        self._responses: dict[str, type[Schema]] = {}
        self._arguments: dict[str, type[Schema] | None] = {}
        self.live: LiveFeed | None = None
        self.metrics: ProcessMetrics | None = None
        self.summary_cache = None
        self.rollups: Rollups | None = None
        self.accelerators: dict[str, Callable] = {}
        self._readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def init_app(self, app) -> None:
        """Validate config and providers and build the extended schemas.

        Raises :class:`ConfigError` on an unknown provider name, a provider for an endpoint
        this host does not serve, or a field or argument name clash.
        """
        self.config = DashboardConfig.from_mapping(app.config)
        self.metrics = ProcessMetrics(nats=self.config.stream.nats_url is not None)
        self.live = LiveFeed(self.config.stream, self.metrics)
        self.installed = self._collect_providers()
        self.accelerators = self._collect_accelerators()
        self.enabled = self._resolve_enabled()
        self.rollups = Rollups(
            self.engine, self.config.rollups, self.clock, on_refresh=self.metrics.refreshed
        )
        if self.enabled or self.accelerators:
            self.rollups.start()
        for endpoint_id, endpoint in self.endpoints.items():
            providers = self.providers_for(endpoint_id)
            self._responses[endpoint_id] = _extend_schema(
                endpoint.response, self._merged(endpoint_id, endpoint.response, providers, "fields")
            )
            extra_args = self._merged(endpoint_id, endpoint.arguments, providers, "arguments")
            self._arguments[endpoint_id] = (
                _extend_schema(endpoint.arguments or Schema, extra_args)
                if extra_args
                else endpoint.arguments
            )
        app.extensions[EXTENSION_KEY] = self

    def register_blueprints(self, app, api) -> None:
        """Let plugins add their blueprints (call after the host registered its own)."""
        self.plugin_manager.hook.omni_register_blueprints(app=app, api=api, dashboard=self)

    def started(self, app) -> None:
        """Tell plugins the app is configured."""
        self.plugin_manager.hook.omni_app_started(app=app, dashboard=self)

    def stopping(self, app) -> None:
        """Tell plugins the app is shutting down."""
        self.plugin_manager.hook.omni_app_stopping(app=app, dashboard=self)

    def providers_for(self, endpoint_id: str) -> list[Provider]:
        """Enabled providers of one endpoint, in configuration order."""
        return [p for p in self.enabled.values() if p.endpoint == endpoint_id]

    def response_schema(self, endpoint_id: str) -> type[Schema]:
        """The endpoint's response schema: the host's plus every enabled provider's fields."""
        return self._responses[endpoint_id]

    def arguments_schema(self, endpoint_id: str) -> type[Schema] | None:
        """The endpoint's query-argument schema, with the enabled providers' arguments."""
        return self._arguments[endpoint_id]

    def reader(self, connection, now, *, snapshot: bool = False) -> RawReader:
        """The reader of one response on ``connection`` at ``now`` (the same one for every
        part of it): from rollups plus raw rows when they are on. ``snapshot`` says that
        every statement on ``connection`` reads one snapshot (see ``Rollups.reader``);
        a PostgreSQL connection at REPEATABLE READ or SERIALIZABLE does."""
        cached = self._readers.get(connection)
        if cached is not None and cached[0] == now:
            return cached[1]
        snapshot = snapshot or reads_one_snapshot(connection)
        reader = self.rollups.reader(connection, now, snapshot=snapshot)
        self._readers[connection] = (now, reader)
        return reader

    def base(
        self,
        endpoint_id: str,
        compute: Callable[[], dict],
        *,
        connection,
        now,
        args: Mapping[str, Any] | None = None,
    ) -> dict:
        """The host's own payload of an endpoint: ``compute()``, or the equal result of a
        plugin's accelerator while rollups serve reads (then ``compute`` is not called).
        With a provider's filter argument in ``args`` (``Provider.narrows``) the payload
        always comes from the accelerator, computed over the matching events.

        The accelerator reads one snapshot: ``connection`` when it is a PostgreSQL
        REPEATABLE READ or SERIALIZABLE one (then ``extend`` shares its reader), else a
        connection of its own."""
        args = args or {}
        g.omni_dashboard_base = endpoint_id
        accelerate = self.accelerators.get(endpoint_id)
        narrowed = self._narrowed(endpoint_id, args)
        if accelerate is None or not (narrowed or self.rollups.active):
            return compute()
        if reads_one_snapshot(connection):
            reader = self.reader(connection, now, snapshot=True)
            if narrowed or isinstance(reader, RollupReader):
                return accelerate(reader, now, args)
            return compute()
        with snapshot(self.engine, self.config.statement_timeout_ms) as own:
            reader = self.rollups.reader(own, now, snapshot=True)
            if narrowed or isinstance(reader, RollupReader):
                return accelerate(reader, now, args)
        return compute()

    def extend(self, endpoint_id: str, base: dict, *, connection, args: Mapping[str, Any], now):
        """Return ``base`` plus the fields of every enabled provider of the endpoint."""
        providers = self.providers_for(endpoint_id)
        if not providers:
            return base
        if self._narrowed(endpoint_id, args) and g.get("omni_dashboard_base") != endpoint_id:
            raise RuntimeError(
                f"a filter argument of {endpoint_id!r} narrows the host's fields: compute them "
                "with Dashboard.base(..., args=args) (docs/host-integration.md)"
            )
        ctx = ProviderContext(
            connection=connection,
            now=now,
            args=args,
            config=self.config,
            reader=self.reader(connection, now),
        )
        merged = dict(base)
        for provider in providers:
            try:
                values = provider.compute(ctx)
            except InvalidArgument as exc:
                abort(
                    422,
                    message=f"Invalid value for {exc.field}: {exc.message}",
                    errors={"query": {exc.field: [exc.message]}},
                )
            required = {name for name, fld in provider.fields.items() if fld.required}
            if not required <= set(values) <= set(provider.fields):
                raise RuntimeError(
                    f"provider {provider.name!r} returned {sorted(values)}, "
                    f"declared {sorted(provider.fields)}"
                )
            merged.update(values)
        return merged

    def _narrowed(self, endpoint_id: str, args: Mapping[str, Any]) -> bool:
        """Whether ``args`` holds a filter argument of an enabled provider of the endpoint."""
        return any(
            args.get(name) is not None
            for provider in self.providers_for(endpoint_id)
            for name in provider.narrows
        )

    def _collect_providers(self) -> dict[str, Provider]:
        found: dict[str, Provider] = {}
        for batch in self.plugin_manager.hook.omni_dashboard_providers():
            for provider in batch or ():
                if provider.name in found:
                    raise ConfigError(
                        f"two installed plugins both provide {provider.name!r}; uninstall one"
                    )
                found[provider.name] = provider
        return found

    def _collect_accelerators(self) -> dict[str, Callable]:
        found: dict[str, Callable] = {}
        for batch in self.plugin_manager.hook.omni_dashboard_accelerators():
            for endpoint_id, compute in (batch or {}).items():
                if endpoint_id in found:
                    raise ConfigError(
                        f"two installed plugins both accelerate {endpoint_id!r}; uninstall one"
                    )
                if endpoint_id in self.endpoints:
                    found[endpoint_id] = compute
        return found

    def _resolve_enabled(self) -> dict[str, Provider]:
        names = self.config.providers
        if names is None:
            names = tuple(sorted(self.installed))
        unknown = [n for n in names if n not in self.installed]
        if unknown:
            available = ", ".join(sorted(self.installed)) or "(none installed)"
            raise ConfigError(
                f"OMNI_DASHBOARD_PROVIDERS names {', '.join(unknown)}, which no installed plugin "
                f"provides; installed providers: {available}. Use 'all', 'none' or a comma list "
                "of installed names."
            )
        enabled = {n: self.installed[n] for n in names}
        for provider in enabled.values():
            if provider.endpoint not in self.endpoints:
                served = ", ".join(sorted(self.endpoints))
                raise ConfigError(
                    f"provider {provider.name!r} extends {provider.endpoint!r}, which this host "
                    f"does not serve (it serves: {served}); remove it from "
                    "OMNI_DASHBOARD_PROVIDERS"
                )
            if provider.narrows and provider.endpoint not in self.accelerators:
                raise ConfigError(
                    f"provider {provider.name!r} filters {provider.endpoint!r}, whose own fields "
                    "no installed plugin computes; remove it from OMNI_DASHBOARD_PROVIDERS"
                )
        return enabled

    def _merged(self, endpoint_id, base: type[Schema] | None, providers, kind: str) -> dict:
        taken = {
            name: "the host"
            for name, fld in (base._declared_fields.items() if base else ())
            for name in {name, fld.data_key or name}
        }
        merged: dict = {}
        for provider in providers:
            for name, fld in getattr(provider, kind).items():
                key = fld.data_key or name
                owner = taken.get(key) or taken.get(name)
                if owner:
                    what = "field" if kind == "fields" else "query argument"
                    raise ConfigError(
                        f"provider {provider.name!r} adds the {what} {key!r} to {endpoint_id!r}, "
                        f"which {owner} already defines; disable one of them in "
                        "OMNI_DASHBOARD_PROVIDERS"
                    )
                taken[key] = taken[name] = f"provider {provider.name!r}"
                merged[name] = fld
        return merged
