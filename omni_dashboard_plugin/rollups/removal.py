"""Every object the plugin ever created in a database, found in its catalog, and dropped.

Found by name (what every name of the plugin's starts with, in any layout), not from the
current layout's list: an uninstall also removes what an earlier release left behind, its
``SECURITY DEFINER`` trigger functions included.
"""

from sqlalchemy import DDL, Text, cast, column, func, select, table
from sqlalchemy.dialects.postgresql import REGCLASS

from .triggers import PLUGIN_PATTERN, function_drops

# PostgreSQL relation kinds the plugin's names may have, and how each is dropped
# (indexes and sequences go with their tables).
DROP_RELATION = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}


def _named(name_column):
    return name_column.like(PLUGIN_PATTERN, escape="\\")


def _sqlite_drops(connection) -> list[str]:
    master = table("sqlite_master", column("type"), column("name"))
    found = connection.execute(
        select(master.c.type, master.c.name).where(
            _named(master.c.name), master.c.type.in_(("trigger", "view", "table"))
        )
    ).all()
    order = {"trigger": 0, "view": 1, "table": 2}
    found.sort(key=lambda row: order[row.type])
    return [f'DROP {kind.upper()} IF EXISTS "{name}"' for kind, name in found]


def _postgresql_drops(connection) -> list[str]:
    here = func.to_regnamespace(func.current_schema())
    triggers = table("pg_trigger", column("tgname"), column("tgrelid"), column("tgisinternal"))
    drops = [
        f'DROP TRIGGER IF EXISTS "{name}" ON {relation}'
        for name, relation in connection.execute(
            select(triggers.c.tgname, cast(cast(triggers.c.tgrelid, REGCLASS), Text)).where(
                _named(triggers.c.tgname), ~triggers.c.tgisinternal
            )
        )
    ]
    relations = table("pg_class", column("relname"), column("relkind"), column("relnamespace"))
    found = connection.execute(
        select(relations.c.relkind, relations.c.relname).where(
            relations.c.relnamespace == here,
            _named(relations.c.relname),
            relations.c.relkind.in_(tuple(DROP_RELATION)),
        )
    ).all()
    for what in ("VIEW", "MATERIALIZED VIEW", "TABLE"):  # views first: they read the tables
        names = sorted(f'"{name}"' for kind, name in found if DROP_RELATION[kind] == what)
        if names:
            drops.append(f"DROP {what} IF EXISTS {', '.join(names)}")
    # Functions last: the tail's views call one.
    return drops + function_drops(connection, _named)


def drop_plugin_objects(connection) -> list[str]:
    """Drop the plugin's triggers (on any table), then its functions and tables (in the
    current schema) on ``connection``; returns the statements run. Dialects other than
    PostgreSQL and SQLite hold none."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        drops = _sqlite_drops(connection)
    elif dialect == "postgresql":
        drops = _postgresql_drops(connection)
    else:
        return []
    for statement in drops:
        connection.execute(DDL(statement))
    return drops
