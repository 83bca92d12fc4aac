"""The example host's traffic simulator writes events and the live feed carries them."""

from sqlalchemy import func, select

from host_example.seed import SeedPlan
from host_example.simulator import TrafficSimulator
from host_example.tables import omni_events
from omni_dashboard_plugin.live.hub import Filters

from .conftest import NOW, build_app
from .data import seeded


def test_simulated_events_reach_the_database_and_the_feed(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'sim.db'}")
    engine = app.extensions["omni_host"].engine
    seeded(engine, SeedPlan(events=10, days=1, now=NOW))
    feed = app.extensions["omni_dashboard"].live
    start = feed.hub().subscribe(Filters(), None)
    simulator = TrafficSimulator(engine, feed, lambda: NOW, seed=3)
    for _ in range(40):
        simulator.step()
    with engine.connect() as conn:
        written = conn.execute(select(func.count()).select_from(omni_events)).scalar_one() - 10
    items = start.subscription.queue.take(0, 100)
    assert len(items) == 40
    names = {item.name for item in items}
    assert written == sum(item.name == "event.received" for item in items) > 0
    assert names <= {"event.received", "instance.status"}
    assert all(item.data.get("channel") for item in items)
