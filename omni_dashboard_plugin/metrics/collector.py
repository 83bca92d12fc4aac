"""The Prometheus collector: every dashboard number as metric families, one snapshot per
scrape, read through the same reader as the dashboard (rollups when on).

A host with its own registry registers it there instead of serving the plugin's route::

    registry.register(DashboardCollector(dashboard))
"""

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from ..grid import slot_time
from ..queries.metric_values import MetricValues, metric_values
from ..rollups.state import read_watermark
from ..sql.snapshot import snapshot
from ..sql.standby import replay_lag


def _label(value) -> str:
    return "" if value is None else str(value)


def _by_labels(counts: dict) -> list[tuple[tuple[str, ...], int]]:
    """``counts`` (keyed by a tuple of values) by label values, sorted: a NULL value is the
    empty label, so its count adds to the empty value's."""
    merged: dict[tuple[str, ...], int] = {}
    for key, n in counts.items():
        labels = tuple(map(_label, key))
        merged[labels] = merged.get(labels, 0) + n
    return sorted(merged.items())


def _seconds(ms: int) -> str:
    return format(ms / 1000, "g")


def _event_families(values: MetricValues) -> list:
    events = CounterMetricFamily(
        "omni_events",
        "Stored message events (all-time), by status, channel and direction",
        labels=("status", "channel", "direction"),
    )
    for labels, n in _by_labels(values.events):
        events.add_metric(list(labels), n)
    histogram = values.processing
    buckets = [(_seconds(bound), n) for bound, n in sorted(histogram.at_or_below.items())]
    processing = HistogramMetricFamily(
        "omni_event_processing_seconds",
        "Processing time of the stored events that have one",
        buckets=[*buckets, ("+Inf", histogram.count)],
        sum_value=histogram.sum_ms / 1000,
    )
    return [events, processing]


def _dead_letter_families(values: MetricValues) -> list:
    dead = GaugeMetricFamily("omni_dead_letters", "Dead letters by status", labels=("status",))
    for labels, n in _by_labels({(status,): n for status, n in values.dead_letters.items()}):
        dead.add_metric(list(labels), n)
    return [dead]


def _automation_families(values: MetricValues) -> list:
    executions = CounterMetricFamily(
        "omni_automation_executions",
        "Automation log entries (all-time) by status",
        labels=("status",),
    )
    executed = {(status,): n for status, n in values.automation_executions.items()}
    for labels, n in _by_labels(executed):
        executions.add_metric(list(labels), n)
    actions = CounterMetricFamily(
        "omni_automation_actions", "Actions the automations executed (all-time)"
    )
    actions.add_metric([], values.automation_actions)
    return [executions, actions]


def _instance_families(values: MetricValues) -> list:
    instances = GaugeMetricFamily(
        "omni_instances", "Channel instances by channel and state", labels=("channel", "state")
    )
    for labels, n in _by_labels(values.instances):
        instances.add_metric(list(labels), n)
    return [instances]


def data_families(values: MetricValues) -> list:
    """The families of Omni's data (but those of a table the database lacks)."""
    parts = (
        (values.events, _event_families),
        (values.dead_letters, _dead_letter_families),
        (values.automation_executions, _automation_families),
        (values.instances, _instance_families),
    )
    return [family for value, build in parts if value is not None for family in build(values)]


class DashboardCollector:
    """Collects Omni's numbers and the plugin's own for ``dashboard`` (a configured
    :class:`omni_dashboard_plugin.host.Dashboard`)."""

    def __init__(self, dashboard):
        self.dashboard = dashboard

    def describe(self):
        """No samples are read to describe the families (registering reads nothing)."""
        return []

    def collect(self):
        """Every family, from one snapshot of the database at one ``now``."""
        dashboard = self.dashboard
        now = dashboard.clock()
        with snapshot(dashboard.engine, dashboard.config.statement_timeout_ms) as connection:
            reader = dashboard.reader(connection, now, snapshot=True)
            families = data_families(metric_values(reader, dashboard.lacking))
            mark = read_watermark(connection) if dashboard.rollups.active else None
            behind = replay_lag(connection)
        if behind is not None:
            families.append(
                GaugeMetricFamily(
                    "omni_dashboard_standby_lag_seconds",
                    "How far the hot standby this server reads is behind its primary",
                    value=behind,
                )
            )
        if mark is not None:
            lag = GaugeMetricFamily(
                "omni_dashboard_rollups_watermark_lag_seconds",
                "How far the rolled-up history ends before now",
                value=(now - slot_time(mark.watermark_slot)).total_seconds(),
            )
            families.append(lag)
        yield from families
        if dashboard.config.stream.nats_url:
            dashboard.live.hub()  # the NATS bridge of this process reports its state
        yield from dashboard.metrics.collect()
