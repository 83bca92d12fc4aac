"""This package's own hook implementations: the built-in providers are plugins too."""

from .hookspecs import hookimpl
from .providers import automations, breakdowns, rates, timeline


@hookimpl
def omni_dashboard_providers():
    """The built-in providers."""
    return [rates.PROVIDER, timeline.PROVIDER, breakdowns.PROVIDER, automations.PROVIDER]
