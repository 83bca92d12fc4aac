"""The host contract: every hook an ``omni`` plugin may implement.

The pluggy project name and the entry-point group are both ``omni``. A host creates a
``pluggy.PluginManager("omni")``, adds these specs and loads the ``omni`` entry points;
``omni_dashboard_plugin.host.Dashboard`` does all of that for it.
"""

import pluggy

PROJECT = "omni"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def omni_dashboard_providers():
    """Return an iterable of :class:`omni_dashboard_plugin.provider.Provider`.

    Each provider adds fields (and optionally query arguments) to one endpoint of the
    host. The host enables them by name through ``OMNI_DASHBOARD_PROVIDERS``.
    """


@hookspec
def omni_dashboard_accelerators():
    """Return ``{endpoint id: omni_dashboard_plugin.provider.Accelerator}``: equivalents of
    a host's own payload, which ``Dashboard.base`` uses while rollups serve reads and for a
    request with a provider's filter argument (``Provider.narrows``).

    ``Accelerator.compute(reader, now, args)`` gets the request's
    :class:`omni_dashboard_plugin.reading.Reader` and parsed arguments; its result must
    equal what the host computes itself, field by field (for the filter: over the events
    that match it). It stands in only for a host whose schema has exactly its ``fields``.
    """


@hookspec
def omni_register_blueprints(app, api, dashboard):
    """Register the plugin's own flask-smorest blueprints on ``api``.

    ``dashboard`` is the host's :class:`omni_dashboard_plugin.host.Dashboard`, which
    gives access to the engine, the clock, the live feed (``dashboard.live``) and the
    enabled providers (``dashboard.registry.enabled``).
    """


@hookspec
def omni_app_started(app, dashboard):
    """Called once when the host app is fully configured (start background work here)."""


@hookspec
def omni_app_stopping(app, dashboard):
    """Called when the host shuts down (stop background work here)."""
