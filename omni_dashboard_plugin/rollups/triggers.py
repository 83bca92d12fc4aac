"""PostgreSQL triggers that keep a plugin table as a host table changes.

One trigger per operation (a trigger with transition tables has one event), calling
functions that run as their owner (the plugin's user: the host's writers need no grant
on the plugin's tables), so their tables are named with their schema.
"""

import hashlib
from dataclasses import dataclass

from sqlalchemy import DDL, Text, and_, cast, column, func, select, table
from sqlalchemy.dialects.postgresql import REGCLASS

# What every name of the plugin's triggers and functions starts with, in any layout.
PLUGIN_PATTERN = "omni\\_dashboard\\_r%"

# What each operation's trigger calls its transition tables.
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "truncate": "",
}
_FUNCTION = (
    "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
    "SECURITY DEFINER{path} AS $${body}$$"
)
_FIXED_PATH = " SET search_path = pg_catalog, pg_temp"


@dataclass(frozen=True)
class Triggers:
    """The triggers ``{prefix}_{name}`` on ``source``. ``clauses`` holds each one's name,
    event and what follows ``AFTER EVENT ON source`` in its definition; by default one per
    operation of :data:`TRANSITIONS`, statement-level, calling the function ``name``."""

    name: str
    source: str
    prefix: str
    clauses: tuple[tuple[str, str, str], ...] = ()

    @property
    def operations(self) -> dict[str, tuple[str, str]]:
        """Each trigger's (event, clause) by its name's suffix."""
        if self.clauses:
            return {name: (event, clause) for name, event, clause in self.clauses}
        return {
            op: (op, f"{transition} FOR EACH STATEMENT EXECUTE FUNCTION {self.name}()")
            for op, transition in TRANSITIONS.items()
        }

    def trigger(self, operation: str) -> str:
        """The name of the operation's trigger."""
        return f"{self.prefix}_{operation}"

    def drops(self) -> list[str]:
        """DROP TRIGGER IF EXISTS of every operation."""
        return [
            f"DROP TRIGGER IF EXISTS {self.trigger(op)} ON {self.source}" for op in self.operations
        ]

    def creates(self) -> list[str]:
        """CREATE TRIGGER of every operation (after :meth:`drops`)."""
        return [
            f"CREATE TRIGGER {self.trigger(op)} AFTER {event.upper()} ON {self.source} {clause}"
            for op, (event, clause) in self.operations.items()
        ]

    def in_place(self):
        """A scalar subquery: whether every trigger exists and is enabled."""
        catalog = table("pg_trigger", column("tgrelid"), column("tgname"), column("tgenabled"))
        found = select(func.count()).where(
            catalog.c.tgrelid == func.to_regclass(self.source),
            catalog.c.tgname.in_([self.trigger(op) for op in self.operations]),
            catalog.c.tgenabled != "D",
        )
        return found.scalar_subquery() == len(self.operations)

    def _digest(self) -> str:
        return hashlib.sha256("\n".join(self.creates()).encode()).hexdigest()[:32]

    def _first(self) -> str:
        return self.trigger(next(iter(self.operations)))

    def creates_described(self) -> list[str]:
        """:meth:`creates`, then a comment on the first trigger naming a digest of their
        definitions (see :meth:`current`)."""
        comment = f"COMMENT ON TRIGGER {self._first()} ON {self.source} IS '{self._digest()}'"
        return [*self.creates(), comment]

    def current(self):
        """A scalar subquery: whether every trigger is in place, created by
        :meth:`creates_described` with these definitions."""
        catalog = table("pg_trigger", column("oid"), column("tgrelid"), column("tgname"))
        comment = (
            select(func.obj_description(catalog.c.oid, "pg_trigger"))
            .where(
                catalog.c.tgrelid == func.to_regclass(self.source),
                catalog.c.tgname == self._first(),
            )
            .scalar_subquery()
        )
        return and_(self.in_place(), comment == self._digest())

    def keep_function_current(
        self, connection, body: str, name: str | None = None, *, fixed_path: bool = True
    ) -> bool:
        """Create the function ``name`` (default: :attr:`name`), or replace it when its
        body is not ``body``; whether it did either. ``fixed_path``: it runs with the
        search path ``pg_catalog, pg_temp`` (set and reset on every call); only a body
        that names nothing through the search path (no operator, function or table not
        qualified by its schema) may go without."""
        name = name or self.name
        if function_body(connection, name) == body:
            return False
        path = _FIXED_PATH if fixed_path else ""
        connection.execute(DDL(_FUNCTION.format(function=name, body=body, path=path)))
        return True


def function_body(connection, name: str) -> str | None:
    """The body of the function ``name``, if there is one."""
    catalog = table("pg_proc", column("proname"), column("prosrc"))
    return connection.execute(select(catalog.c.prosrc).where(catalog.c.proname == name)).scalar()


def function_drops(connection, named) -> list[str]:
    """DROP statements for the functions in the current schema whose name meets
    ``named(name column)``, each by its signature (whatever its parameters)."""
    procs = table("pg_proc", column("oid"), column("proname"), column("pronamespace"))
    here = procs.c.pronamespace == func.to_regnamespace(func.current_schema())
    arguments = func.pg_get_function_identity_arguments(procs.c.oid)
    found = select(procs.c.proname, arguments).where(here, named(procs.c.proname))
    return [f'DROP FUNCTION IF EXISTS "{name}"({args})' for name, args in connection.execute(found)]


def schema_of(connection) -> str:
    """The current schema, to qualify the plugin's tables in a function's body."""
    return connection.execute(select(func.current_schema())).scalar()


def drop_older_layouts(connection, prefix: str) -> list[str]:
    """Drop the plugin's triggers and trigger functions whose names do not start with
    ``prefix`` (an earlier layout's: they would go on writing into its tables on every
    write to the host's tables); returns what was dropped."""
    current = prefix.replace("_", "\\_") + "%"

    def older(name):
        return and_(name.like(PLUGIN_PATTERN, escape="\\"), ~name.like(current, escape="\\"))

    if connection.dialect.name == "sqlite":
        master = table("sqlite_master", column("type"), column("name"))
        names = connection.execute(
            select(master.c.name).where(master.c.type == "trigger", older(master.c.name))
        ).scalars()
        drops = [f"DROP TRIGGER IF EXISTS {name}" for name in names]
    else:
        catalog = table("pg_trigger", column("tgname"), column("tgrelid"))
        found = select(catalog.c.tgname, cast(cast(catalog.c.tgrelid, REGCLASS), Text))
        drops = [
            f"DROP TRIGGER IF EXISTS {name} ON {relation}"
            for name, relation in connection.execute(found.where(older(catalog.c.tgname)))
        ]
        # The plugin's functions take no arguments and live in the current schema.
        procs = table("pg_proc", column("proname"), column("pronamespace"))
        here = procs.c.pronamespace == func.to_regnamespace(func.current_schema())
        names = connection.execute(select(procs.c.proname).where(here, older(procs.c.proname)))
        drops += [f"DROP FUNCTION IF EXISTS {name}()" for name in names.scalars()]
    for statement in drops:
        connection.execute(DDL(statement))
    return drops
