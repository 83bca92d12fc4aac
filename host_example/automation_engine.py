"""The example host's stand-in for Omni's in-memory automation engine."""


class AutomationEngine:
    """Holds whether the engine runs and its per-instance queues (in memory, as in Omni)."""

    def __init__(self, running: bool = True):
        self.running = running
        self.queues: dict[str, dict[str, int]] = {}

    def metrics(self) -> dict:
        """Omni's pre-enhancement /automation-metrics body."""
        if not self.running:
            return {"running": False, "message": "Automation engine not running"}
        return {
            "running": True,
            "instanceQueues": [
                {"instanceId": instance_id, **counts}
                for instance_id, counts in sorted(self.queues.items())
            ],
        }
