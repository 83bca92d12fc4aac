"""What only the host knows and the dashboard summary reports: its health and engine state."""

from dataclasses import dataclass


@dataclass(frozen=True)
class HostFacts:
    """The host's view of itself, as its /health and /automation-metrics report it.

    ``status`` is ``'healthy'`` or ``'degraded'``; ``uptime`` in seconds; ``db_latency`` in
    milliseconds (``None`` when the database did not answer).
    """

    status: str
    uptime: int
    db_latency: int | None
    nats_connected: bool
    automations_running: bool
