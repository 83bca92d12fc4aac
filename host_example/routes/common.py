"""Helpers shared by the host's blueprints."""

from functools import wraps

from flask import current_app


def host():
    """The running app's :class:`host_example.app.HostState`."""
    return current_app.extensions["omni_host"]


def query_arguments(blp, schema):
    """``blp.arguments(schema)`` for a query schema, or an empty dict when there is none."""
    if schema is not None:
        return blp.arguments(schema, location="query")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            return view({}, *args, **kwargs)

        return wrapper

    return decorator
