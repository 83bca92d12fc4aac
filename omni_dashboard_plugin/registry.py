"""The plugins of one app, a Flask extension: providers, accelerators and the schemas.

It loads the ``omni`` plugins, resolves ``OMNI_DASHBOARD_PROVIDERS`` against the
providers they offer and builds each endpoint's response and argument schemas: the
host's own plus every enabled provider's fields. A clash stops start-up.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pluggy
from marshmallow import Schema

from . import hookspecs
from .config import BY_KEY, ConfigError
from .provider import Provider

EXTENSION_KEY = "omni_dashboard_registry"


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


class Registry:
    """The installed and enabled providers and accelerators, and the merged schemas."""

    def __init__(self, endpoints: Mapping[str, Endpoint], plugin_manager: pluggy.PluginManager):
        self.endpoints = dict(endpoints)
        self.plugin_manager = plugin_manager
        self.installed: dict[str, Provider] = {}
        self.enabled: dict[str, Provider] = {}
        self.accelerators: dict[str, Callable] = {}
        self._responses: dict[str, type[Schema]] = {}
        self._arguments: dict[str, type[Schema] | None] = {}

    def init_app(self, app) -> None:
        """Collect the plugins' providers and accelerators, enable those that
        ``OMNI_DASHBOARD_PROVIDERS`` names and build the schemas.

        Raises :class:`ConfigError` on an unknown provider name, a provider for an endpoint
        this host does not serve, or a field or argument name clash.
        """
        names = BY_KEY["OMNI_DASHBOARD_PROVIDERS"].read(app.config)
        self.installed = self._collect_providers()
        self.accelerators = self._collect_accelerators()
        self.enabled = self._resolve_enabled(names)
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

    def providers_for(self, endpoint_id: str) -> list[Provider]:
        """Enabled providers of one endpoint, in configuration order."""
        return [p for p in self.enabled.values() if p.endpoint == endpoint_id]

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

    def _resolve_enabled(self, names: tuple[str, ...] | None) -> dict[str, Provider]:
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
