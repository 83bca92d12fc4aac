"""A second registration on one app is refused with a message, as Flask-SQLAlchemy does:
nothing of the first is overwritten."""

import pytest
from flask import Flask

from omni_dashboard_plugin.host import Dashboard
from omni_dashboard_plugin.live.feed import LiveFeed
from omni_dashboard_plugin.registry import Registry, make_plugin_manager

from .conftest import build_app


def test_a_second_init_app_of_the_dashboard_is_refused(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'twice.db'}")
    dashboard = app.extensions["omni_dashboard"]
    registry, live = dashboard.registry, dashboard.live
    enabled = dict(registry.enabled)
    with pytest.raises(RuntimeError, match=r"already registered on this Flask app.*init_app once"):
        dashboard.init_app(app)
    another = Dashboard(dashboard.engine, registry.endpoints, plugin_manager=make_plugin_manager())
    with pytest.raises(RuntimeError, match="'omni_dashboard'"):
        another.init_app(app)
    assert app.extensions["omni_dashboard"] is dashboard
    assert app.extensions["omni_dashboard_registry"] is registry
    assert app.extensions["omni_dashboard_live"] is live
    assert registry.enabled == enabled


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (
            lambda: Registry({}, make_plugin_manager(load_entrypoints=False)),
            "omni_dashboard_registry",
        ),
        (LiveFeed, "omni_dashboard_live"),
    ],
)
def test_each_extension_registers_once(build, key):
    app = Flask(__name__)
    first = build()
    first.init_app(app)
    with pytest.raises(RuntimeError, match=f"app.extensions\\[{key!r}\\]"):
        build().init_app(app)
    assert app.extensions[key] is first
