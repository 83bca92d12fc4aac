"""What a host calls once to adopt the contract.

A host describes the endpoints it lets providers extend, then::

    dashboard = Dashboard(engine, endpoints={"event-ops.metrics": Endpoint(EventMetricsSchema)})
    dashboard.init_app(app)               # validates config and providers, builds schemas
    dashboard.rollups.install()           # DDL: or `flask omni-dashboard install` on deploy
    ResponseSchema = dashboard.response_schema("event-ops.metrics")
    ...                                   # the host registers its blueprints
    dashboard.register_blueprints(app, api)
    dashboard.started(app)                # checks the rollup tables, starts plugins
    base = dashboard.base("event-ops.metrics", lambda: host_payload(conn, now),
                          connection=conn, now=now)
    payload = dashboard.extend("event-ops.metrics", base, connection=conn, args=args, now=now)

With no plugin installed, or every provider disabled, ``response_schema`` and
``arguments_schema`` return the host's own schema classes and ``extend`` returns the base
payload unchanged, so every response stays byte-for-byte what it was. ``base`` returns
the host's own payload, from a plugin's accelerated equivalent only while rollups serve
reads (docs/rollups.md) or a filter narrows it, and only for a payload of exactly the
accelerator's fields (docs/host-integration.md).
"""

import logging
import weakref
from collections.abc import Callable, Collection, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

import pluggy
from flask import g
from flask_smorest import abort
from marshmallow import Schema

from .caller import credentials_scope
from .config import ConfigError, DashboardConfig
from .extensions import refuse_registered, register
from .facts import HostFacts
from .live.feed import EXTENSION_KEY as LIVE_KEY
from .live.feed import LiveFeed
from .metrics.process import ProcessMetrics
from .provider import InvalidArgument, Provider, ProviderContext
from .queries.metric_values import TABLES as METRIC_TABLES
from .registry import EXTENSION_KEY as REGISTRY_KEY
from .registry import TABLES_DOC, Endpoint, Registry, make_plugin_manager
from .rollups.reader import RawReader, RollupReader
from .rollups.service import EXTENSION_KEY as ROLLUPS_KEY
from .rollups.service import TABLES as ROLLUP_TABLES
from .rollups.service import Rollups
from .sql.catalog import describe, lacking
from .sql.snapshot import reads_one_snapshot, snapshot
from .summary import TABLES as SUMMARY_TABLES
from .window import inverted

__all__ = ["EXTENSION_KEY", "Dashboard", "Endpoint", "HostFacts", "make_plugin_manager", "utcnow"]

EXTENSION_KEY = "omni_dashboard"
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current instant as a naive UTC datetime (how Omni stores timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Dashboard:
    """The host's handle on the plugin contract (one per app).

    ``engine`` is the host's SQLAlchemy engine, ``endpoints`` the endpoints providers may
    extend, ``clock`` returns the naive-UTC ``now``, and ``facts`` returns the host's
    :class:`HostFacts` (health and engine state) for GET /api/v2/dashboard, which is only
    served when the host gives it. ``cache_scope`` returns, within a request, whose data
    its answer is: a cached dashboard answer is only served to a request of the same scope
    (default: every credential the request carries).

    It joins three Flask extensions, each with its own ``init_app``: ``registry``
    (plugins, providers, schemas), ``rollups`` (tables, readers, refresh) and ``live``
    (the live feed), and answers a request's ``base`` and ``extend`` from them.
    """

    def __init__(
        self,
        engine,
        endpoints: Mapping[str, Endpoint],
        *,
        clock: Callable[[], datetime] = utcnow,
        facts: Callable[[], HostFacts] | None = None,
        cache_scope: Callable[[], Hashable] = credentials_scope,
        plugin_manager: pluggy.PluginManager | None = None,
    ):
        self.engine = engine
        self.facts = facts
        self.cache_scope = cache_scope
        self.clock = clock
        self.registry = Registry(endpoints, plugin_manager or make_plugin_manager())
        self.rollups = Rollups(engine, clock)
        self.live = LiveFeed()
        # Both set by init_app.
        self.config: DashboardConfig
        self.metrics: ProcessMetrics
        # The host's tables the plugin reads that are missing or lack columns (what it lacks).
        self.lacking: dict[str, tuple[str, ...] | None] = {}
        # Each response's reader by its connection, while the connection lives (a reader
        # holds its connection weakly, so the entry goes with the response).
        self._readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def init_app(self, app) -> None:
        """Read and validate the config, check that the host's tables have the columns the
        plugin reads (one catalog inspection; a table that lacks them disables what reads
        it), load the plugins and build the schemas. No DDL: the plugin's own tables are
        installed by ``flask omni-dashboard install`` or ``dashboard.rollups.install()``, and
        checked by :meth:`started`.

        Raises :class:`ConfigError` on a bad setting, an unknown provider name, a provider
        named explicitly that this host cannot serve, a field or argument name clash, or a
        missing table under ``OMNI_DASHBOARD_MISSING_TABLES=error``; ``RuntimeError`` when
        the app has a dashboard (or one of its extensions) already.
        """
        keys = (EXTENSION_KEY, REGISTRY_KEY, ROLLUPS_KEY, LIVE_KEY)
        refuse_registered(app, keys, type(self).__name__)
        self.config = DashboardConfig.from_mapping(app.config)
        self.metrics = ProcessMetrics(nats=self.config.stream.nats_url is not None)
        self.lacking = {} if self.config.providers == () else self._check_tables()
        self.registry.init_app(app, lacking=self.lacking)
        self.rollups.on_refresh = self.metrics.refreshed
        self.rollups.init_app(
            app,
            used=bool(self.registry.enabled or self.registry.accelerators),
            lacking=self.lacking,
        )
        self.live.meter = self.metrics
        self.live.init_app(app, off=self.registry.off)
        self._warn_lacking()
        register(app, EXTENSION_KEY, self)

    def lacks(self, tables: Collection[str]) -> bool:
        """Whether the database lacks one of ``tables`` (or a column the plugin reads)."""
        return any(table in self.lacking for table in tables)

    def _check_tables(self) -> dict[str, tuple[str, ...] | None]:
        found = lacking(self.engine) or {}
        if found and self.config.missing_tables == "error":
            raise ConfigError(
                "OMNI_DASHBOARD_MISSING_TABLES=error, and the database lacks what the plugin "
                f"reads: {'; '.join(describe(t, c) for t, c in found.items())}. Create them "
                f"({TABLES_DOC}), or set OMNI_DASHBOARD_MISSING_TABLES=disable to run without "
                "what reads them"
            )
        return found

    def _warn_lacking(self) -> None:
        """One warning per table the database lacks, naming what it disables."""
        for table, columns in self.lacking.items():
            providers = self.registry.installed.values()
            needs = [f"provider {p.name!r}" for p in providers if table in p.tables]
            needs += [
                f"the plugin's computation of {endpoint_id!r}"
                for endpoint_id, accelerator in self.registry.offered.items()
                if table in accelerator.tables
            ]
            if table in SUMMARY_TABLES and self.facts is not None:
                needs.append("GET /api/v2/dashboard")
            if table in METRIC_TABLES.values():
                needs.append("its Prometheus families")
            if table in ROLLUP_TABLES and self.config.rollups.mode != "off":
                needs.append("the rollups")
            log.warning(
                "%s: disabled: %s (%s; OMNI_DASHBOARD_MISSING_TABLES=error stops start-up instead)",
                describe(table, columns),
                ", ".join(needs) or "nothing enabled",
                TABLES_DOC,
            )

    def register_blueprints(self, app, api) -> None:
        """Let plugins add their blueprints (call after the host registered its own)."""
        self.registry.plugin_manager.hook.omni_register_blueprints(app=app, api=api, dashboard=self)

    def started(self, app) -> None:
        """Check the rollup tables (a missing one stops start-up with
        ``OMNI_DASHBOARD_ROLLUPS=on``) and tell plugins the app is configured."""
        self.rollups.start()
        self.registry.plugin_manager.hook.omni_app_started(app=app, dashboard=self)

    def stopping(self, app) -> None:
        """Tell plugins the app is shutting down (the live feed also stops by itself when
        the process exits)."""
        self.registry.plugin_manager.hook.omni_app_stopping(app=app, dashboard=self)

    def providers_for(self, endpoint_id: str) -> list[Provider]:
        """Enabled providers of one endpoint, in configuration order."""
        return self.registry.providers_for(endpoint_id)

    def response_schema(self, endpoint_id: str) -> type[Schema]:
        """The endpoint's response schema: the host's plus every enabled provider's fields."""
        return self.registry.response_schema(endpoint_id)

    def arguments_schema(self, endpoint_id: str) -> type[Schema] | None:
        """The endpoint's query-argument schema, with the enabled providers' arguments."""
        return self.registry.arguments_schema(endpoint_id)

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
        self._refuse_inverted(endpoint_id, args)
        g.omni_dashboard_base = endpoint_id
        accelerator = self.registry.accelerators.get(endpoint_id)
        narrowed = self._narrowed(endpoint_id, args)
        if accelerator is None or not (narrowed or self.rollups.active):
            return compute()
        if reads_one_snapshot(connection):
            reader = self.reader(connection, now, snapshot=True)
            if narrowed or isinstance(reader, RollupReader):
                return accelerator.compute(reader, now, args)
            return compute()
        with snapshot(self.engine, self.config.statement_timeout_ms) as own:
            reader = self.rollups.reader(own, now, snapshot=True)
            if narrowed or isinstance(reader, RollupReader):
                return accelerator.compute(reader, now, args)
        return compute()

    def extend(self, endpoint_id: str, base: dict, *, connection, args: Mapping[str, Any], now):
        """Return ``base`` plus the fields of every enabled provider of the endpoint."""
        providers = self.providers_for(endpoint_id)
        if not providers:
            return base
        self._refuse_inverted(endpoint_id, args)
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
                _refuse(exc)
            required = {name for name, fld in provider.fields.items() if fld.required}
            if not required <= set(values) <= set(provider.fields):
                raise RuntimeError(
                    f"provider {provider.name!r} returned {sorted(values)}, "
                    f"declared {sorted(provider.fields)}"
                )
            merged.update(values)
        return merged

    def _refuse_inverted(self, endpoint_id: str, args: Mapping[str, Any]) -> None:
        """422 naming ``since`` for a window that ends before it begins, when providers
        extend the endpoint (without them the host answers as it always did)."""
        if inverted(args) and self.providers_for(endpoint_id):
            _refuse(InvalidArgument("since", "must not be after until"))

    def _narrowed(self, endpoint_id: str, args: Mapping[str, Any]) -> bool:
        """Whether ``args`` holds a filter argument of an enabled provider of the endpoint."""
        return any(
            args.get(name) is not None
            for provider in self.providers_for(endpoint_id)
            for name in provider.narrows
        )


def _refuse(exc: InvalidArgument) -> None:
    """flask-smorest's 422 naming the argument, which the host's error handler renders."""
    abort(
        422,
        message=f"Invalid value for {exc.field}: {exc.message}",
        errors={"query": {exc.field: [exc.message]}},
    )
