"""Reads while the rollups lag (a first refresh under way, one stopped midway): exact, and
read raw, as with rollups off."""

import re
from datetime import timedelta

import pytest

from omni_dashboard_plugin.grid import slot_of
from omni_dashboard_plugin.rollups import refresh as module
from omni_dashboard_plugin.rollups.kinds import PREFIX
from omni_dashboard_plugin.rollups.statements import TAG_LABEL

from . import rollup_support as rs
from .conftest import NOW

pytestmark = pytest.mark.slow  # refreshes stopped midway over days of history

SPEC = {**rs.SAMPLE_EVENT, "status": "completed"}
WINDOW = (NOW - timedelta(days=3), NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def pair(db_url):
    return rs.Pair(db_url)


def rolled_reads(engine):
    """Collect the statements meanwhile that read a rolled table (slot, hour, day, total)
    or several questions at once (shared edges with the questions that take them)."""
    rolled = re.compile(rf"{PREFIX}\w+_(slot|hour|day|total)\b")
    return rs.statements(
        engine, lambda statement: bool(rolled.search(statement)) or f"AS {TAG_LABEL}" in statement
    )


def test_a_refresh_stopped_midway_leaves_reads_raw_until_the_rollups_catch_up(pair, monkeypatch):
    """A refresh that fails in its fourth chunk leaves three days rolled of ten: every
    response equals rollups off and reads no rolled table and no shared edges (the raw
    tail beside the rolled slots costs more than rollups off). Caught up, they serve."""
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
    with rolled_reads(pair.engine) as rolled:
        rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    assert rolled == []
    pair.rollups.refresh()
    with rolled_reads(pair.engine) as rolled:
        rs.assert_same(pair, WINDOW, rs.INSTANCE_IDS[1])
    assert any(f"AS {TAG_LABEL}" in statement for statement in rolled)
