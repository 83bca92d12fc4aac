"""Reads while the rollups lag (a first refresh under way, one stopped midway): exact, and
read like rollups off after the rolled slots, not through the shared edges."""

from datetime import timedelta

import pytest

from omni_dashboard_plugin.grid import slot_of
from omni_dashboard_plugin.rollups import refresh as module
from omni_dashboard_plugin.rollups.statements import EDGE_LABEL

from . import rollup_support as rs
from .conftest import NOW

SPEC = {**rs.SAMPLE_EVENT, "status": "completed"}
WINDOW = (NOW - timedelta(days=3), NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


def edge_reads(engine):
    """Collect the statements that read shared edges meanwhile."""
    return rs.statements(engine, lambda statement: f"AS {EDGE_LABEL}" in statement)


def test_a_refresh_stopped_midway_reads_its_window_raw_after_the_rolled_slots(pair, monkeypatch):
    """A refresh that fails in its fourth chunk leaves three days rolled of ten: every
    response equals rollups off, and no question reads the shared edges (the raw tail
    grouped by every dim and slot: days of it). Caught up, the edges serve again."""
    pair.clear(NOW)
    moments = [NOW - timedelta(minutes=m) for m in range(0, 10 * 24 * 60, 41)]
    rs.write(
        pair.engine,
        events=[
            rs.event_row(at, {**SPEC, "instance": i % 4, "processing": i * 37 % 900})
            for i, at in enumerate(moments)
        ],
        logs=[rs.log_row(at, {"status": "success", "actions": [], "time": 3}) for at in moments],
        payloads=[rs.payload_row(at, 10) for at in moments],
    )
    real, calls = module._roll_totals, []

    def fail_in_the_fourth_chunk(connection, *args):
        calls.append(args)
        if len(calls) == 4:
            raise RuntimeError("killed")
        real(connection, *args)

    monkeypatch.setattr(module, "_roll_totals", fail_in_the_fourth_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        pair.rollups.refresh()
    monkeypatch.undo()
    behind = slot_of(NOW - rs.HORIZON) - pair.watermark().watermark_slot
    assert behind > 5 * 96  # days of raw tail
    # The dashboard, the host's metrics, all-time and windowed analytics, filtered or not.
    with edge_reads(pair.engine) as edges:
        rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    assert edges == []
    pair.rollups.refresh()
    with edge_reads(pair.engine) as edges:
        rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    assert edges
