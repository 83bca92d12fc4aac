"""The portable SQL constructs: a slot's width is part of the statement cache key."""

from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, MetaData, Table, create_engine, insert, select

from omni_dashboard_plugin.sql.constructs import slot_end, slot_index, slot_start

EPOCH = datetime(1970, 1, 1)
MOMENT = datetime(2026, 3, 10, 12, 50)


def test_two_widths_compile_to_two_statements(db_url):
    """``slot_index(slot_start(t, 3600))`` after the same expression at 900 s is not
    served the 900-second statement from SQLAlchemy's compiled cache (nor slot_end)."""
    engine = create_engine(db_url)
    metadata = MetaData()
    moments = Table("construct_moments", metadata, Column("t", DateTime))
    metadata.create_all(engine)
    seconds = int((MOMENT - EPOCH).total_seconds())
    try:
        with engine.begin() as conn:
            conn.execute(insert(moments), [{"t": MOMENT}])
            for width in (900, 3600, 900, 60):
                index, end = conn.execute(
                    select(slot_index(slot_start(moments.c.t, width)), slot_end(moments.c.t, width))
                ).one()
                assert index == seconds // width, width
                expected_end = EPOCH + timedelta(seconds=(seconds // width + 1) * width)
                assert str(end) == str(expected_end), width
    finally:
        metadata.drop_all(engine)
        engine.dispose()
