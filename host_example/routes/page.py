"""GET /dashboard: the operations dashboard page (static files; it reads the API)."""

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).resolve().parent.parent / "static"


def build() -> Blueprint:
    """A plain Flask blueprint serving the page and its assets (no data, no key needed)."""
    blp = Blueprint("dashboard-page", __name__)

    @blp.get("/dashboard")
    def page():
        return send_from_directory(STATIC, "dashboard.html")

    @blp.get("/dashboard.<any(css, js):kind>")
    def asset(kind):
        return send_from_directory(STATIC, f"dashboard.{kind}")

    @blp.get("/favicon.ico")
    def favicon():
        return send_from_directory(STATIC, "favicon.ico", max_age=86400)

    return blp
