"""Waiting in tests: on a condition, never on the clock.

A test waits for what it needs (an event, a state, a log line, an open port) with
``wait_until``. The one ceiling, ``CEILING``, is far above anything a wait needs even on a busy
machine: it only turns a hang into a failure that names what never came. Scale it with
``OMNI_TEST_CEILING_SCALE`` (a factor; 2 doubles it) on a very slow machine.

A pause that *is* the scenario (a writer inserting every 50 ms, a client that stays silent
past a deadline) goes through ``pace`` with its reason; tests/test_suite_rules.py refuses a
bare ``time.sleep`` anywhere else in tests/.
"""

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CEILING = 60.0 * float(os.environ.get("OMNI_TEST_CEILING_SCALE") or 1)
POLL = 0.02  # seconds between two looks at the condition


def wait_until(predicate: Callable[[], T], what: str, ceiling: float = CEILING) -> T:
    """Poll ``predicate`` until it returns something true and return that; raise an
    AssertionError naming ``what`` once ``ceiling`` seconds have passed without it."""
    deadline = time.monotonic() + ceiling
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"still waiting after {ceiling:.0f} s for {what}")
        time.sleep(POLL)
    return value


def finishes(call: Callable[[], T], what: str, ceiling: float = CEILING) -> T:
    """``call()``'s result (or its exception), run in a thread so that a call that hangs
    fails the test with an AssertionError naming ``what`` after ``ceiling`` seconds."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(ceiling)
    if thread.is_alive():
        raise AssertionError(f"still waiting after {ceiling:.0f} s for {what}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``deadline_in`` value), at least a poll's worth."""
    return max(POLL, deadline - time.monotonic())


def deadline_in(ceiling: float = CEILING) -> float:
    """The moment ``ceiling`` seconds from now, for blocking reads bounded by ``remaining``."""
    return time.monotonic() + ceiling


def expired(deadline: float) -> bool:
    """Whether ``deadline`` (a ``deadline_in`` value) has passed: a loop that reads with
    ``remaining`` asserts ``not expired(deadline)`` to fail a hang."""
    return time.monotonic() >= deadline


def pace(seconds: float, why: str) -> None:
    """Let ``seconds`` pass because the scenario needs time to pass (``why`` says what for);
    never to wait for something to happen: that is ``wait_until``."""
    time.sleep(seconds)
