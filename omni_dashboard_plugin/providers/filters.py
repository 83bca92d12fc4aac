"""The ``channel`` argument of GET /events/analytics: every number of one channel's events."""

from ..provider import Provider, ProviderContext
from ..schemas import channel_argument


def compute(ctx: ProviderContext) -> dict:
    """Nothing to add: the filter narrows the host's fields and every provider's."""
    return {}


PROVIDER = Provider(
    "filters",
    "events.analytics",
    {},
    compute,
    __doc__,
    arguments={"channel": channel_argument()},
    narrows=("channel",),
    tables=("omni_events",),
)
