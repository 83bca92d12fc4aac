"""What only the host knows and the dashboard summary reports: its health and engine state."""

from dataclasses import dataclass

# The values of ``HostFacts.status``: those of Omni's /health ``status``.
STATUSES = ("healthy", "degraded")


@dataclass(frozen=True)
class HostFacts:
    """The host's view of itself, as its /health and /automation-metrics report it.

    ``status`` is one of :data:`STATUSES` (``'healthy'`` or ``'degraded'``; not a check's
    ``'ok'``); ``uptime`` in whole seconds; ``db_latency`` in whole milliseconds (``None``
    when the database did not answer); ``nats_connected`` and ``automations_running``
    booleans. Anything else raises :class:`ValueError` naming the field.
    """

    status: str
    uptime: int
    db_latency: int | None
    nats_connected: bool
    automations_running: bool

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(
                f"HostFacts.status={self.status!r}: use one of {', '.join(STATUSES)} "
                "(Omni's /health status, not a check's 'ok')"
            )
        for name, kind, optional in (
            ("uptime", int, False),
            ("db_latency", int, True),
            ("nats_connected", bool, False),
            ("automations_running", bool, False),
        ):
            value = getattr(self, name)
            if (value is None and optional) or (
                isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            ):
                continue
            wanted = "an integer" if kind is int else "a boolean"
            raise ValueError(
                f"HostFacts.{name}={value!r}: {wanted}" + (" or None" if optional else "")
            )
