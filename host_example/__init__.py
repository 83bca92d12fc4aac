"""The reference host: a Flask + flask-smorest + SQLAlchemy API with Omni's tables."""

__version__ = "2.0.0"

from .app import create_app

__all__ = ["create_app"]
