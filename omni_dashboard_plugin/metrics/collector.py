"""The Prometheus collector: every dashboard number as metric families, one snapshot per
scrape, read through the same reader as the dashboard (rollups when on).

A host with its own registry registers it there instead of serving the plugin's route::

    registry.register(DashboardCollector(dashboard))
"""

from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..grid import slot_time
from ..handle import DashboardHandle
from ..queries.metric_values import MetricValues, ProcessingHistogram, metric_values
from ..reading import NOT_READ
from ..rollups.state import read_watermark
from ..sql.snapshot import snapshot
from ..sql.standby import replay_lag

# Every family the collector's own samples go in: its type, help text and labels.
FAMILIES: dict[str, tuple[type, str, tuple[str, ...] | None]] = {
    "omni_events": (
        CounterMetricFamily,
        "Stored message events (all-time), by status, channel and direction",
        ("status", "channel", "direction"),
    ),
    "omni_event_processing_seconds": (
        HistogramMetricFamily,
        "Processing time of the stored events that have one",
        None,
    ),
    "omni_dead_letters": (GaugeMetricFamily, "Dead letters by status", ("status",)),
    "omni_automation_executions": (
        CounterMetricFamily,
        "Automation log entries (all-time) by status",
        ("status",),
    ),
    "omni_automation_actions": (
        CounterMetricFamily,
        "Actions the automations executed (all-time)",
        None,
    ),
    "omni_instances": (
        GaugeMetricFamily,
        "Channel instances by channel and state",
        ("channel", "state"),
    ),
    "omni_dashboard_standby_lag_seconds": (
        GaugeMetricFamily,
        "How far the hot standby this server reads is behind its primary",
        None,
    ),
    "omni_dashboard_rollups_watermark_lag_seconds": (
        GaugeMetricFamily,
        "How far the rolled-up history ends before now",
        None,
    ),
}


def family(name: str, **values) -> Any:  # the type FAMILIES names for it
    """The family ``name`` of :data:`FAMILIES`, with ``values`` (none: to describe it)."""
    kind, documentation, labels = FAMILIES[name]
    return kind(name, documentation, labels=labels, **values)


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


def _event_families(counts: dict, histogram: ProcessingHistogram) -> list:
    events = family("omni_events")
    for labels, n in _by_labels(counts):
        events.add_metric(list(labels), n)
    buckets = [(_seconds(bound), n) for bound, n in sorted(histogram.at_or_below.items())]
    processing = family(
        "omni_event_processing_seconds",
        buckets=[*buckets, ("+Inf", histogram.count)],
        sum_value=histogram.sum_ms / 1000,
    )
    return [events, processing]


def _dead_letter_families(counts: dict) -> list:
    dead = family("omni_dead_letters")
    for labels, n in _by_labels({(status,): n for status, n in counts.items()}):
        dead.add_metric(list(labels), n)
    return [dead]


def _automation_families(counts: dict, actions_executed: int) -> list:
    executions = family("omni_automation_executions")
    for labels, n in _by_labels({(status,): n for status, n in counts.items()}):
        executions.add_metric(list(labels), n)
    actions = family("omni_automation_actions")
    actions.add_metric([], actions_executed)
    return [executions, actions]


def _instance_families(counts: dict) -> list:
    instances = family("omni_instances")
    for labels, n in _by_labels(counts):
        instances.add_metric(list(labels), n)
    return [instances]


def data_families(values: MetricValues) -> list:
    """The families of Omni's data (but those of a table the database lacks)."""
    families = []
    if values.events is not None and values.processing is not None:
        families += _event_families(values.events, values.processing)
    if values.dead_letters is not None:
        families += _dead_letter_families(values.dead_letters)
    if values.automation_executions is not None and values.automation_actions is not None:
        families += _automation_families(values.automation_executions, values.automation_actions)
    if values.instances is not None:
        families += _instance_families(values.instances)
    return families


class DashboardCollector:
    """Collects Omni's numbers and the plugin's own for ``dashboard`` (a configured
    :class:`omni_dashboard_plugin.host.Dashboard`)."""

    def __init__(self, dashboard: DashboardHandle):
        self.dashboard = dashboard

    def describe(self) -> list[Metric]:
        """Every family :meth:`collect` may yield, without samples: a registry catches a
        name taken twice. Registering reads nothing."""
        return [*(family(name) for name in FAMILIES), *self.dashboard.metrics.describe()]

    def collect(self):
        """Every family, from one snapshot of the database at one ``now``."""
        dashboard = self.dashboard
        now = dashboard.clock()
        with snapshot(dashboard.engine, dashboard.config.statement_timeout_ms) as connection:
            reader = dashboard.reader(connection, now, snapshot=True)
            families = data_families(metric_values(reader, dashboard.lacking))
            mark = None
            if dashboard.rollups.active:
                # The reader's rollups read it in this snapshot already, unless they did not.
                read = reader.watermark
                mark = read_watermark(connection) if read is NOT_READ else read
            behind = replay_lag(connection)
        if behind is not None:
            families.append(family("omni_dashboard_standby_lag_seconds", value=behind))
        if mark is not None:
            lag = (now - slot_time(mark.watermark_slot)).total_seconds()
            families.append(family("omni_dashboard_rollups_watermark_lag_seconds", value=lag))
        yield from families
        if dashboard.config.stream.nats_url:
            dashboard.live.hub()  # the NATS bridge of this process reports its state
        yield from dashboard.metrics.collect()
