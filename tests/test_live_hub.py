"""The hub's replay buffer at its edge: a client one event behind the oldest kept one
resumes without loss; one further behind is told to reset."""

from omni_dashboard_plugin.live import cursor as ids
from omni_dashboard_plugin.live.hub import Filters, Hub
from omni_dashboard_plugin.live.messages import FeedEvent


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
