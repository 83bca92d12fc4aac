"""This package's own hook implementations: the built-in providers are plugins too."""

from .hookspecs import hookimpl


@hookimpl
def omni_dashboard_providers():
    """The built-in providers."""
    return []
