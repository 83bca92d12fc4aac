"""The plugins of one app, a Flask extension: providers, accelerators and the schemas.

It loads the ``omni`` plugins, resolves ``OMNI_DASHBOARD_PROVIDERS`` against the
providers they offer and builds each endpoint's response and argument schemas: the
host's own plus every enabled provider's fields. A clash stops start-up.

``all`` enables every provider this host can serve (its endpoint served, its tables
present, its filter computable for the host's schema) and logs why each other one is not
enabled; a provider named explicitly that cannot be served stops start-up. An accelerator
stands in only for a host payload of exactly its fields: any other host keeps its own.
"""

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import pluggy
from marshmallow import Schema

from . import hookspecs
from .config import BY_KEY, ConfigError
from .extensions import refuse_registered, register
from .provider import Accelerator, DashboardPart, Provider

log = logging.getLogger(__name__)

EXTENSION_KEY = "omni_dashboard_registry"
TABLES_DOC = "docs/host-integration.md, 'The tables the plugin reads'"


@dataclass(frozen=True)
class Endpoint:
    """An endpoint the host lets providers extend: its response and argument schemas.

    ``host_computes=True``: the plugin never computes the host's payload of it (no
    accelerator stands in, not even when its fields equal Omni's), as for a payload scoped
    to the caller; the providers' fields it adds stay database-wide.
    """

    response: type[Schema]
    arguments: type[Schema] | None = None
    host_computes: bool = False


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


def field_names(schema: type[Schema] | None) -> set[str]:
    """The names ``schema``'s fields have in a payload (``data_key`` where set)."""
    declared = schema._declared_fields.items() if schema is not None else ()
    return {fld.data_key or name for name, fld in declared}


def _extend_schema(base: type[Schema], extra: Mapping) -> type[Schema]:
    if not extra:
        return base
    # Same class name: the OpenAPI component keeps its name and gains the fields.
    return type(base.__name__, (base,), dict(extra))


class Registry:
    """The installed and enabled providers and accelerators, and the merged schemas."""

    def __init__(self, endpoints: Mapping[str, Endpoint], plugin_manager: pluggy.PluginManager):
        self.endpoints = dict(endpoints)
        self.plugin_manager = plugin_manager
        self.installed: dict[str, Provider] = {}
        self.enabled: dict[str, Provider] = {}
        # The installed accelerators of the host's endpoints, and those that fit its payload.
        self.offered: dict[str, Accelerator] = {}
        self.accelerators: dict[str, Accelerator] = {}
        # Why an offered accelerator does not stand in for the host's payload.
        self.declined: dict[str, str] = {}
        self.off = False
        self._responses: dict[str, type[Schema]] = {}
        self._arguments: dict[str, type[Schema] | None] = {}

    def init_app(self, app, *, lacking: Collection[str] = ()) -> None:
        """Collect the plugins' providers and accelerators, enable those that
        ``OMNI_DASHBOARD_PROVIDERS`` names and build the schemas. ``lacking`` names the
        host's tables that are missing or lack columns the plugin reads: what reads them is
        not enabled. ``none`` enables nothing, accelerators included.

        Raises :class:`ConfigError` on an unknown provider name, a provider named explicitly
        that this host cannot serve, or a field or argument name clash; ``RuntimeError`` when
        the app has a registry already.
        """
        refuse_registered(app, (EXTENSION_KEY,), type(self).__name__)
        names = BY_KEY["OMNI_DASHBOARD_PROVIDERS"].read(app.config)
        self.off = names == ()
        self.installed = self._collect_providers()
        self.accelerators = {} if self.off else self._collect_accelerators(set(lacking))
        self.enabled = self._resolve_enabled(names, set(lacking))
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
        register(app, EXTENSION_KEY, self)

    def providers_for(self, endpoint_id: str) -> list[Provider]:
        """Enabled providers of one endpoint, in configuration order."""
        return [p for p in self.enabled.values() if p.endpoint == endpoint_id]

    def dashboard_parts(self) -> list[DashboardPart]:
        """What the enabled providers add to GET /api/v2/dashboard, in the order the
        plugins offer them."""
        enabled = [self.enabled[name] for name in self.installed if name in self.enabled]
        return [provider.dashboard for provider in enabled if provider.dashboard is not None]

    def response_schema(self, endpoint_id: str) -> type[Schema]:
        """The endpoint's response schema: the host's plus every enabled provider's fields."""
        return self._responses[endpoint_id]

    def arguments_schema(self, endpoint_id: str) -> type[Schema] | None:
        """The endpoint's query-argument schema, with the enabled providers' arguments."""
        return self._arguments[endpoint_id]

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

    def _collect_accelerators(self, lacking: set[str]) -> dict[str, Accelerator]:
        found: dict[str, Accelerator] = {}
        for batch in self.plugin_manager.hook.omni_dashboard_accelerators():
            for endpoint_id, accelerator in (batch or {}).items():
                if endpoint_id in self.offered:
                    raise ConfigError(
                        f"two installed plugins both accelerate {endpoint_id!r}; uninstall one"
                    )
                if endpoint_id not in self.endpoints:
                    continue
                self.offered[endpoint_id] = accelerator
                reason = self._unfit(endpoint_id, accelerator, lacking)
                if reason is None:
                    found[endpoint_id] = accelerator
                    log.info(
                        "the plugin computes %s's payload in place of the host's function while "
                        "rollups serve reads and under a filter argument (database-wide numbers; "
                        "Endpoint(..., host_computes=True) keeps the host's own)",
                        endpoint_id,
                    )
                    continue
                self.declined[endpoint_id] = reason
                log.info(
                    "the plugin does not compute %s's own payload for this host (%s): the "
                    "host's function answers every request",
                    endpoint_id,
                    reason,
                )
        return found

    def _unfit(self, endpoint_id: str, accelerator: Accelerator, lacking: set[str]) -> str | None:
        """Why ``accelerator`` cannot stand in for the host's payload, or ``None``."""
        endpoint = self.endpoints[endpoint_id]
        if endpoint.host_computes:
            return "the host computes it itself (Endpoint(..., host_computes=True))"
        host = field_names(endpoint.response)
        reasons = []
        if extra := sorted(host - accelerator.fields):
            reasons.append(f"the host's schema has fields it does not compute: {', '.join(extra)}")
        if absent := sorted(accelerator.fields - host):
            reasons.append(f"the host's schema lacks fields it computes: {', '.join(absent)}")
        if unknown := sorted(field_names(endpoint.arguments) - accelerator.arguments):
            reasons.append(f"it does not honour the host's arguments {', '.join(unknown)}")
        if missing := [t for t in accelerator.tables if t in lacking]:
            reasons.append(f"it reads {', '.join(missing)}, which the database lacks")
        return "; ".join(reasons) or None

    def _unservable(self, provider: Provider, lacking: set[str]) -> tuple[str, int] | None:
        """Why this host cannot serve ``provider``, and how loud to say it under ``all``
        (a missing table has its own warning already), or ``None``."""
        if provider.endpoint not in self.endpoints:
            served = ", ".join(sorted(self.endpoints)) or "none"
            return (
                f"extends {provider.endpoint!r}, which this host does not serve "
                f"(it serves: {served})",
                logging.WARNING,
            )
        if missing := [t for t in provider.tables if t in lacking]:
            return (
                f"reads {', '.join(missing)}, which the database lacks or lacks columns of "
                f"({TABLES_DOC})",
                logging.INFO,
            )
        if provider.narrows and provider.endpoint not in self.accelerators:
            why = self.declined.get(provider.endpoint, "no installed plugin computes them")
            return (
                f"filters {provider.endpoint!r}, whose own fields it cannot narrow: {why}",
                logging.WARNING,
            )
        return None

    def _resolve_enabled(
        self, names: tuple[str, ...] | None, lacking: set[str]
    ) -> dict[str, Provider]:
        explicit = names is not None
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
        enabled = {}
        for name in names:
            unservable = self._unservable(self.installed[name], lacking)
            if unservable is None:
                enabled[name] = self.installed[name]
                continue
            reason, level = unservable
            if explicit:
                raise ConfigError(
                    f"provider {name!r} {reason}; remove it from OMNI_DASHBOARD_PROVIDERS"
                )
            log.log(
                level,
                "OMNI_DASHBOARD_PROVIDERS=all: provider %r is not enabled: it %s (name the "
                "providers to enable to silence this)",
                name,
                reason,
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
