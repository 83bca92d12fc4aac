"""What a metric provider is, and what it receives when it computes."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import fields as ma_fields
from sqlalchemy.engine import Connection

from .reading import Reader


class InvalidArgument(Exception):
    """Raised by a provider for an argument it refuses; becomes a VALIDATION_ERROR (422)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class ProviderContext:
    """Everything a provider may read while computing one response.

    ``connection`` is open inside the request's read transaction, ``now`` is the one
    naive-UTC instant the whole response is computed at, ``args`` holds the parsed query
    arguments of the endpoint (the host's and every enabled provider's), ``config`` the
    plugin's validated settings, and ``reader`` sums rollup kinds over a window on
    ``connection`` (from the rollup tables when they are on, else from raw rows).
    """

    connection: Connection
    now: datetime
    args: Mapping[str, Any]
    config: Any
    reader: Reader


@dataclass(frozen=True)
class Section:
    """A field of the dashboard that holds one of its sections: an object whose fields the
    enabled providers declare under ``name`` (``previous``: ``events.previous``), present
    when one of them computed it. ``component`` names its OpenAPI schema."""

    name: str
    component: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DashboardPart:
    """What a provider adds to GET /api/v2/dashboard.

    ``fields`` maps a section of the summary to the marshmallow fields added there
    (``events``, ``automations``, or ``previous``: ``events.previous``, the numbers of the
    earlier windows, with ``compare``); a :class:`Section` field holds a section.
    ``compute(ctx)`` returns their values by section, ``ctx.args`` holding the dashboard's
    arguments (``instanceId`` and ``channel`` narrow every events number; ``previous`` is
    computed only with ``compare``). ``arguments`` are the query arguments it adds to the
    dashboard.
    """

    fields: Mapping[str, Mapping[str, ma_fields.Field | Section]]
    compute: Callable[[ProviderContext], Mapping[str, Mapping[str, Any]]]
    arguments: Mapping[str, ma_fields.Field] = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    """A named contribution of fields to one host endpoint.

    ``endpoint`` is an endpoint id the host serves (``event-ops.metrics``,
    ``events.analytics``, ``automation-metrics``); ``fields`` are the marshmallow fields
    added to its response, ``arguments`` the query arguments added to its request, and
    ``compute(ctx)`` returns a dict with the keys of ``fields`` (those declared
    ``required=False`` may be left out); ``description`` says what it adds, in a sentence
    (``omni-host plugins`` lists it).

    ``narrows`` names arguments of the provider that narrow the host's own fields too (a
    filter): a request with one of them gets the host's payload from the plugin's
    accelerator of the endpoint, which the host cannot be asked to filter.

    ``tables`` names the host's tables it reads (those of docs/host-integration.md): where
    one is missing, or lacks a column the plugin reads, the provider is not enabled.

    ``dashboard`` is what it adds to GET /api/v2/dashboard, if anything.
    """

    name: str
    endpoint: str
    fields: Mapping[str, ma_fields.Field]
    compute: Callable[[ProviderContext], dict]
    description: str = ""
    arguments: Mapping[str, ma_fields.Field] = field(default_factory=dict)
    narrows: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    dashboard: DashboardPart | None = None


@dataclass(frozen=True)
class Accelerator:
    """A plugin's computation of a host's own payload of one endpoint (Omni's), which
    ``Dashboard.base`` returns instead of the host's while rollups serve reads, and for a
    request with a provider's filter argument.

    ``compute(reader, now, args)`` returns the payload's ``fields`` (names as sent), read
    through ``reader`` from ``tables``; ``arguments`` are the host arguments it honours.
    It stands in only for a host whose response schema has exactly ``fields`` and whose
    arguments are among ``arguments``: any other host's payload is its own.
    """

    compute: Callable[[Reader, datetime, Mapping[str, Any]], dict]
    fields: frozenset[str]
    arguments: frozenset[str] = frozenset()
    tables: tuple[str, ...] = ()
