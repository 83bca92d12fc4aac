"""Reading a response's questions ahead: all in the statement of its first one.

A response asks its reader question after question (the dashboard: the all-time and
24-hour counts, the last hour, the breakdown, the automations...), and each was a statement
of its own: a round trip that, on a busy database, waits for a core twice. Which questions
a response asks is known only as its code runs, but an endpoint asks the same ones on every
call with the same arguments, at the same distances from its ``now`` (``now - 1 h``) or at
the same instants (a client's ``since``). So each endpoint and query string remembers the
questions of its last response (:class:`Questions`); a question that the last two responses
both asked is read ahead by the next one, in the statement of its first question
(:class:`Asking`). A question asked but not read ahead is read on its own, as before; one
read ahead but not asked costs its part of the statement and is forgotten.

Answers stay exact: a question read ahead is the very question asked (its kind, bounds,
keys and filters), read in the same snapshot.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context, request

from ..cache import Recent

# Endpoints and query strings remembered (the least recently used go first).
REMEMBERED = 256
# How many readers the current request made (on flask.g).
_NTH = "omni_dashboard_readers"


def _forms(key: tuple, now: datetime) -> tuple[tuple, tuple]:
    """A question's two recallable forms: its bounds as instants, and as distances from
    ``now`` (key: kind name, since, until, by, where, by_slot)."""
    name, since, until, *rest = key
    relative = (
        "from now",
        name,
        None if since is None else since - now,
        None if until is None else until - now,
        *rest,
    )
    return ("at", *key), relative


def _key(form: tuple, now: datetime) -> tuple:
    """The question of a recalled ``form`` in a response at ``now``."""
    if form[0] == "at":
        return form[1:]
    _, name, since, until, *rest = form
    return (
        name,
        None if since is None else now + since,
        None if until is None else now + until,
        *rest,
    )


@dataclass(frozen=True)
class _Entry:
    """What one response asked (forms -> kind), and which of them the one before asked too."""

    asked: dict
    again: dict


class Asking:
    """One response's part: the questions to read ahead (:attr:`ahead`, ``(key, kind)``),
    and :meth:`note`, told of each question it asks."""

    def __init__(self, memory: "Questions", scope: tuple, now: datetime, prior: _Entry | None):
        self._memory, self._scope, self._now = memory, scope, now
        self._before = {} if prior is None else prior.asked
        ahead = {} if prior is None else {_key(f, now): kind for f, kind in prior.again.items()}
        self.ahead: list[tuple[tuple, Any]] = list(ahead.items())
        self._asked: dict = {}

    def note(self, kind: Any, key: tuple) -> None:
        """Remember that this response asked ``key`` of ``kind``."""
        forms = _forms(key, self._now)
        if forms[0] in self._asked:
            return
        for form in forms:
            self._asked[form] = kind
        again = {form: kind for form, kind in self._asked.items() if form in self._before}
        self._memory.store(self._scope, _Entry(dict(self._asked), again))


class Questions:
    """The questions each endpoint's last response asked, per query string."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._entries = Recent(size)

    @staticmethod
    def _scope() -> tuple:
        """The endpoint, the query string, and which of the request's readers this is (a
        response may read through more than one: a connection of its own for the host's
        fields, say)."""
        if not has_request_context():
            return (None,)
        nth = g.get(_NTH, 0)
        setattr(g, _NTH, nth + 1)
        return (request.endpoint, tuple(sorted(request.args.items(multi=True))), nth)

    def asking(self, now: datetime) -> Asking:
        """The current response's part, for a reader at ``now``."""
        scope = self._scope()
        return Asking(self, scope, now, self._entries.get(scope))

    def store(self, scope: tuple, entry: _Entry) -> None:
        """Keep ``entry`` as what the endpoint's last response asked (replaced whole:
        other threads may be reading the one before)."""
        self._entries.put(scope, entry)
