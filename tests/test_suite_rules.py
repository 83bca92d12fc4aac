"""The suite's own rules: no test asserts on the wall clock, no test sleeps in place of
waiting for a condition (tests/waiting.py), a test that starts a process is marked slow, and
``pytest -m "not slow"`` keeps a fair share of the tests."""

import ast
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from . import conftest

TESTS = Path(__file__).resolve().parent
# The one place a bare time.sleep may be: the helper every scenario pause goes through.
SLEEP_ALLOWED = {"waiting.py"}
CLOCKS = {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns"}
TIMING_NAME = re.compile(r"^(took|elapsed|duration|latency|slowest|waited)(_|$)", re.I)
# The issue's own check, kept as text.
TIMING_TEXT = re.compile(r"(elapsed|took|duration|latency|seconds|delay)[A-Za-z_]* *<=? *[0-9.]+")
FAST_SHARE = 0.40


def _is_clock_call(node: ast.AST) -> bool:
    """``time.monotonic()``, ``perf_counter()`` and the like."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr in CLOCKS and isinstance(func.value, ast.Name) and func.value.id == "time"
    return isinstance(func, ast.Name) and func.id in CLOCKS - {"time"}


def _reads_clock(node: ast.AST) -> bool:
    """Whether an expression's value is a clock reading, or arithmetic on one (a clock read
    only to compute an argument, a timeout say, does not count)."""
    if _is_clock_call(node):
        return True
    if isinstance(node, ast.BinOp):
        return _reads_clock(node.left) or _reads_clock(node.right)
    if isinstance(node, ast.UnaryOp):
        return _reads_clock(node.operand)
    if isinstance(node, ast.Tuple | ast.List):
        return any(_reads_clock(element) for element in node.elts)
    return False


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _clock_names(tree: ast.AST) -> set[str]:
    """Names given a value read from a clock anywhere in the module (``began``, ...)."""
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value:
            targets, value = [node.target], node.value
        if targets and _reads_clock(value):
            for target in targets:
                found |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return found


def wall_clock_asserts(source: str) -> list[int]:
    """Lines of asserts that compare a clock reading, a name set from one, or a timing name
    (took, elapsed, ...)."""
    tree = ast.parse(source)
    clocked = _clock_names(tree)
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            names = _names(compare)
            if (
                any(_is_clock_call(n) for n in ast.walk(compare))
                or names & clocked
                or any(TIMING_NAME.match(name) for name in names)
            ):
                lines.append(node.lineno)
                break
    return lines


def bare_sleeps(source: str) -> list[int]:
    """Lines calling ``time.sleep`` (or ``sleep`` imported from time)."""
    tree = ast.parse(source)
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "time"
        for alias in node.names
        if alias.name == "sleep"
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "sleep"
            and isinstance(func.value, ast.Name)
            and func.value.id == "time"
        ) or (isinstance(func, ast.Name) and func.id in imported):
            lines.append(node.lineno)
    return lines


def sources() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def test_no_test_asserts_on_the_wall_clock():
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sources()
        if (lines := wall_clock_asserts(path.read_text()))
    }
    assert found == {}, "wait with tests/waiting.py; measure speed in bench/"


def test_no_timing_limit_is_written_in_the_tests():
    found = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TIMING_TEXT.search(line)
    ]
    assert found == []


def test_no_test_sleeps_outside_the_waiting_helpers():
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sources()
        if str(path.relative_to(TESTS)) not in SLEEP_ALLOWED
        and (lines := bare_sleeps(path.read_text()))
    }
    assert found == {}, "wait_until(condition) or pace(seconds, why) from tests/waiting.py"


PLANTED = """
import time
from time import sleep as nap

def test_planted(client):
    began = time.monotonic()
    client.get("/")
    assert time.monotonic() - began < 2
    took = 0.5
    assert 1.0 > took
    assert time.perf_counter() >= 0
    started = time.perf_counter()
    assert client.ok and (time.perf_counter() - started) * 1000 <= 100
    time.sleep(0.3)
    nap(1)
"""


def test_the_rules_catch_planted_offences():
    assert wall_clock_asserts(PLANTED) == [8, 10, 11, 13]
    assert bare_sleeps(PLANTED) == [14, 15]


def test_the_rules_let_waits_and_outcomes_through():
    clean = """
import time
from .waiting import pace, wait_until

def test_clean(hub, response):
    deadline = time.monotonic()
    wait_until(lambda: hub.clients == 0, "the slot to be freed")
    pace(0.05, "a writer inserting every 50 ms")
    assert response.status_code == 503 and response.json["error"]["code"] == "X"
    assert hub.seconds_field == 3
"""
    assert wall_clock_asserts(clean) == []
    assert bare_sleeps(clean) == []


def test_a_test_not_marked_slow_cannot_start_a_process(request, monkeypatch):
    started: dict = {}
    monkeypatch.setattr(conftest, "_started", started)  # this test's own record
    with pytest.raises(conftest.UnmarkedSlowTest, match="not marked slow"):
        subprocess.Popen(["true"])
    assert started == {request.node.nodeid: ["true"]}


@pytest.mark.slow
def test_a_test_marked_slow_may_start_one():
    assert subprocess.run(["true"], check=False).returncode == 0


class _Counted:
    """Counts the tests a collection selects and deselects."""

    def __init__(self):
        self.selected = self.deselected = 0

    def pytest_deselected(self, items):
        self.deselected += len(items)

    def pytest_collection_finish(self, session):
        self.selected = len(session.items)


def test_the_fast_selection_keeps_a_fair_share_of_the_tests():
    counted = _Counted()
    profile = settings.get_current_profile_name()
    try:
        code = pytest.main(
            ["--collect-only", "-q", "-m", "not slow", "-p", "no:cacheprovider", str(TESTS)],
            plugins=[counted],
        )
    finally:
        settings.load_profile(profile)  # the nested run loaded the fast profile
    assert code == 0
    total = counted.selected + counted.deselected
    assert counted.deselected > 0 and total > 100
    assert counted.selected >= FAST_SHARE * total, (counted.selected, total)


@pytest.mark.parametrize(
    ("markexpr", "environment", "profile"),
    [
        ("", {}, "full"),
        ("not slow", {}, "fast"),
        ("not  slow and not postgres", {}, "fast"),
        ("slow", {}, "full"),
        ("not slow", {"OMNI_HYPOTHESIS_PROFILE": "full"}, "full"),
        ("", {"OMNI_HYPOTHESIS_PROFILE": "fast"}, "fast"),
    ],
)
def test_the_hypothesis_profile_follows_the_selection(monkeypatch, markexpr, environment, profile):
    monkeypatch.delenv("OMNI_HYPOTHESIS_PROFILE", raising=False)
    monkeypatch.setattr(conftest, "IN_CI", False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert conftest.hypothesis_profile(markexpr) == profile
    monkeypatch.setattr(conftest, "IN_CI", True)
    expected_in_ci = profile if environment else "ci"
    assert conftest.hypothesis_profile(markexpr) == expected_in_ci
