"""The hub's replay buffer at its edge: a client one event behind the oldest kept one
resumes without loss; one further behind is told to reset. What the hub counts is in the
Prometheus families."""

import logging

from omni_dashboard_plugin.live import cursor as ids
from omni_dashboard_plugin.live.feed import LiveFeed
from omni_dashboard_plugin.live.hub import Filters, Hub
from omni_dashboard_plugin.live.messages import FeedEvent
from omni_dashboard_plugin.metrics.process import ProcessMetrics

from .live_support import omni_message, sample

STREAM = "omni_dashboard_stream_"


def _event(n: int) -> FeedEvent:
    return FeedEvent("event.received", {"n": n}, "message.received", None, None)


def _hub_with(events: int, keep: int) -> Hub:
    hub = Hub(replay_size=keep, queue_size=10, max_clients=10)
    for n in range(1, events + 1):
        hub.publish(_event(n))
    return hub


def test_a_client_just_before_the_oldest_kept_event_resumes_with_all_of_them():
    hub = _hub_with(events=8, keep=5)  # events 4 to 8 kept
    start = hub.subscribe(Filters(), ids.encode({hub.epoch: 3}))
    assert start.reset is None
    assert [item.data["n"] for item in start.replay] == [4, 5, 6, 7, 8]


def test_a_client_further_behind_is_told_to_reset():
    hub = _hub_with(events=8, keep=5)
    start = hub.subscribe(Filters(), ids.encode({hub.epoch: 2}))  # event 3 is gone
    assert start.reset == "the missed events are older than the replay buffer"
    assert not start.replay


def test_replays_resets_and_duplicates_are_counted():
    meter = ProcessMetrics(nats=False)
    hub = Hub(replay_size=5, queue_size=10, max_clients=10, meter=meter)
    for n in range(1, 9):
        hub.publish(_event(n))
    hub.subscribe(Filters(), ids.encode({hub.epoch: 3}))  # replayed
    hub.subscribe(Filters(), ids.encode({hub.epoch: 4}))  # replayed
    hub.subscribe(Filters(), ids.encode({hub.epoch: 2}))  # too old: reset
    hub.subscribe(Filters(), None)  # a new client: neither
    hub.use_jetstream({"S": 10})
    hub.publish(_event(11), "S", 11)
    hub.publish(_event(11), "S", 11)  # redelivered
    hub.publish(_event(9), "S", 9)  # redelivered
    assert sample(meter, f"{STREAM}replays_total") == 2
    assert sample(meter, f"{STREAM}resets_total") == 1
    assert sample(meter, f"{STREAM}duplicates_total") == 2
    assert sample(meter, f"{STREAM}replay_failures_total") == 0


def test_a_failed_jetstream_replay_is_logged_counted_and_reset(caplog):
    meter = ProcessMetrics(nats=True)
    hub = Hub(replay_size=5, queue_size=10, max_clients=10, meter=meter, nats=True)
    hub.use_jetstream({"S": 10})

    def unreachable(cursor):
        raise TimeoutError("JetStream did not answer")

    hub.replayer = unreachable
    with caplog.at_level(logging.WARNING, logger="omni_dashboard_plugin.live.hub"):
        start = hub.subscribe(Filters(), ids.encode({"S": 8}))
    assert start.reset == "the missed events cannot be read from JetStream now"
    [record] = [r for r in caplog.records if "JetStream did not answer" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert sample(meter, f"{STREAM}replay_failures_total") == 1
    assert sample(meter, f"{STREAM}resets_total") == 1
    assert sample(meter, f"{STREAM}replays_total") == 0


def test_malformed_messages_on_the_in_process_bus_are_counted():
    meter = ProcessMetrics(nats=False)
    feed = LiveFeed(meter)
    feed.publish("message.received.slack.x", {"id": "no type"})
    feed.publish("message.received.slack.x", omni_message("message.received", n=1))
    feed.publish("message.received.slack.x", {"type": "message.received"})
    assert sample(meter, f"{STREAM}malformed_total") == 2
    assert sample(meter, f"{STREAM}deliveries_total") == 0  # no client
    feed.stop()
