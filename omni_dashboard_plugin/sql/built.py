"""Statements built once per process: SQLAlchemy caches a statement's compiled form by a key
it derives from the statement object each time it runs, and building the object costs more
than running a cached one (0.1 to 0.6 ms of CPU for a small select: performance.md)."""

# Built statements by key (the shapes are few: kinds x plans, and a few fixed reads).
_STATEMENTS: dict = {}


def built(key: tuple, build):
    """The statement built for ``key`` in this process, built by ``build()`` the first time."""
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS.setdefault(key, build())
    return statement
