"""The plugin's Flask extensions' entries in ``app.extensions``: one registration each."""

from collections.abc import Iterable


def refuse_registered(app, keys: Iterable[str], name: str) -> None:
    """Raise ``RuntimeError`` when ``app.extensions`` already holds one of ``keys``: an
    extension (``name``) registers once per app, as Flask-SQLAlchemy's does."""
    for key in keys:
        if key in app.extensions:
            raise RuntimeError(
                f"a {name} is already registered on this Flask app (app.extensions[{key!r}]): "
                f"call init_app once per app, and use that instance (or build another app)"
            )


def register(app, key: str, extension) -> None:
    """Record ``extension`` as ``app.extensions[key]``, refusing a second registration."""
    refuse_registered(app, (key,), type(extension).__name__)
    app.extensions[key] = extension
