"""A second host, the team's API, written from docs/host-integration.md alone, and the
contract tests that run against it and the reference host.

The host (``tables``, ``queries``, ``schemas``, ``views``, ``app``) shares nothing with
``host_example``: its own tables with only the columns the docs list, its own payloads
(an ``/event-ops/metrics`` with a field Omni lacks), a subset of Omni's endpoints, bearer
authentication and a plain ``postgresql://`` URL (psycopg 3). The tests (``test_*.py``)
import neither ``host_example`` nor the rest of ``tests/``, so that they also run from
the installed wheel, outside the repository (``tests/test_extras.py``).
"""
