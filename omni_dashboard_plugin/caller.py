"""Whose answer a cached response is: the scope of the request's caller.

A cached answer is only ever served to a request of the same scope. The default scope is
every credential the request carries, so that a host whose users see different data never
serves one user's answer to another, whatever its authentication; a host that knows its
callers passes ``Dashboard(cache_scope=...)`` instead (docs/host-integration.md).
"""

import hashlib
import json
from collections.abc import Hashable

from flask import request

# Where a request may carry a credential: Omni's key (header or argument), a bearer or
# basic token, a session cookie.
CREDENTIAL_HEADERS = ("Authorization", "x-api-key", "Cookie")
CREDENTIAL_ARGUMENTS = ("api_key",)


def credentials_scope() -> Hashable:
    """A hash of every credential the request carries (none: the anonymous scope)."""
    presented = [request.headers.getlist(name) for name in CREDENTIAL_HEADERS]
    presented += [request.args.getlist(name) for name in CREDENTIAL_ARGUMENTS]
    return hashlib.sha256(json.dumps(presented).encode()).hexdigest()
