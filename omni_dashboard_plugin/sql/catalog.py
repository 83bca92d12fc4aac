"""Which of the tables and columns the plugin reads (:mod:`.tables`) the database lacks."""

import logging

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect

from .tables import metadata

log = logging.getLogger(__name__)


def lacking(engine) -> dict[str, tuple[str, ...] | None] | None:
    """``{table: the columns it lacks}`` for each table of :mod:`.tables` that lacks a
    column the plugin reads, ``{table: None}`` for each that is missing; ``None`` when the
    database cannot be reached (nothing is known).

    Reads the catalog only: one inspection, no DDL."""
    try:
        inspector = inspect(engine)
        present = set(inspector.get_table_names())
        found = {
            name: {column["name"] for column in inspector.get_columns(name)}
            for name in metadata.tables
            if name in present
        }
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        log.warning("the host's tables were not checked, the database is unreachable: %s", exc.orig)
        return None
    missing: dict[str, tuple[str, ...] | None] = {}
    for name, table in metadata.tables.items():
        if name not in found:
            missing[name] = None
        elif absent := tuple(c.name for c in table.columns if c.name not in found[name]):
            missing[name] = absent
    return missing


def describe(table: str, columns: tuple[str, ...] | None) -> str:
    """What ``table`` lacks, in words (``columns`` as :func:`lacking` gives them)."""
    if columns is None:
        return f"table {table} is missing"
    return f"table {table} lacks the column(s) {', '.join(columns)}"
