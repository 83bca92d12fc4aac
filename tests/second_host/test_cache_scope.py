"""The dashboard's cached answers are the caller's own: a host whose authentication is not
Omni's key, and whose users see different data, never serves one user another's answer."""

import hashlib

import pytest
from flask import g, has_request_context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from .app import create_app
from .data import NOW, dataset
from .hosts import KEY, _write_team

pytestmark = pytest.mark.slow  # a database per user, seeded for each test

# Long enough that every request of a test falls within it: a miss is never an expiry.
CACHED = {"OMNI_DASHBOARD_ROLLUPS": "off", "OMNI_DASHBOARD_CACHE_SECONDS": 3600}
USERS = {"token-of-ann": "ann", "token-of-bob": "bob", "token-of-ann-2": "ann"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class TenantDatabases:
    """A database per user, chosen when a connection opens from the request's ``g.user``
    (outside a request, and for the team's own token: ann's); counts the connections."""

    def __init__(self, urls: dict[str, str]):
        self.engines = {user: create_engine(url) for user, url in urls.items()}
        self.opened: list[str] = []
        first = self.engines["ann"]
        self.engine = create_engine(first.url, creator=self._connect, poolclass=NullPool)

    def _connect(self):
        user = g.get("user") if has_request_context() else None
        user = user if user in self.engines else "ann"
        self.opened.append(user)
        chosen = self.engines[user]
        cargs, cparams = chosen.dialect.create_connect_args(chosen.url)
        return chosen.dialect.connect(*cargs, **cparams)

    def dispose(self):
        self.engine.dispose()
        for engine in self.engines.values():
            engine.dispose()


@pytest.fixture
def tenants(databases, database):
    """ann's and bob's databases, the team's tables in each, filled with different data."""
    found = {}
    for user, seed in (("ann", 1), ("bob", 2)):
        url = databases.fresh(database)
        app = create_app(url, token=KEY, clock=lambda: NOW, settings=CACHED, migrate=True)
        engine = app.extensions["omni_dashboard"].engine
        _write_team(engine, dataset(seed=seed, events=60 * seed))
        engine.dispose()
        found[user] = url
    tenant = TenantDatabases(found)
    yield tenant
    tenant.dispose()


def _app(tenants, **options):
    return create_app(
        "unused://",
        token=KEY,
        clock=lambda: NOW,
        settings=CACHED,
        users=USERS,
        engine=tenants.engine,
        **options,
    )


def _total(client, headers) -> int:
    response = client.get("/api/v2/dashboard", headers=headers)
    assert response.status_code == 200, response.get_data()
    # A shared cache in front (a proxy, a CDN) must not keep it for others either.
    assert response.headers["Cache-Control"] == "private, no-cache"
    return response.get_json()["events"]["total"]


def test_two_bearer_tokens_get_their_own_data(tenants):
    """Bob asks right after Ann: he gets his own numbers, not her cached answer; asked
    again, each gets a cached answer (no new connection)."""
    client = _app(tenants).test_client()
    assert _total(client, bearer("token-of-ann")) == 60
    assert _total(client, bearer("token-of-bob")) == 120
    opened = len(tenants.opened)
    assert _total(client, bearer("token-of-ann")) == 60
    assert _total(client, bearer("token-of-bob")) == 120
    assert len(tenants.opened) == opened


@pytest.mark.parametrize(
    "first, second",
    [
        ({"headers": {"Cookie": "session=ann"}}, {"headers": {"Cookie": "session=bob"}}),
        ({"query_string": {"api_key": "a"}}, {"query_string": {"api_key": "b"}}),
        ({"headers": {"x-api-key": "a"}}, {"headers": {"x-api-key": "b"}}),
        ({"headers": bearer("a")}, {"headers": {"x-api-key": "a"}}),
        ({"headers": bearer("a")}, {"headers": {**bearer("a"), "Cookie": "session=b"}}),
    ],
)
def test_every_credential_a_request_carries_scopes_the_cache(tenants, first, second):
    """Requests that differ in any credential (cookie, api_key argument, x-api-key,
    Authorization) never share an answer; the same credentials do."""
    app = _app(tenants)
    scope = app.extensions["omni_dashboard"].cache_scope
    scopes = []
    for request in (first, first, second):
        with app.test_request_context("/api/v2/dashboard", **request):
            scopes.append(scope())
    assert scopes[0] == scopes[1] != scopes[2]


def test_a_host_scope_shares_answers_within_it_and_never_across(tenants):
    """With ``cache_scope`` returning the user, Ann's two tokens share one cached answer
    (one computation), and Bob still gets his own."""
    client = _app(tenants, cache_scope=lambda: g.user).test_client()
    assert _total(client, bearer("token-of-ann")) == 60
    opened = len(tenants.opened)
    assert _total(client, bearer("token-of-ann-2")) == 60
    assert len(tenants.opened) == opened
    assert _total(client, bearer("token-of-bob")) == 120
    assert "bob" in tenants.opened[opened:]


def test_the_default_scope_is_a_hash_not_the_credential(tenants):
    """The cache holds no credential in the clear: its key is a digest."""
    app = _app(tenants)
    with app.test_request_context(headers=bearer("token-of-ann")):
        scope = app.extensions["omni_dashboard"].cache_scope()
    assert "token-of-ann" not in str(scope)
    assert len(scope) == len(hashlib.sha256().hexdigest())
