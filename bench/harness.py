"""Timing harness: interleaved requests through Flask's test client, p50/p95 per call."""

import argparse
import gc
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from host_example import create_app

KEY = "bench"
NOW = datetime(2026, 11, 20, 12, 0, 0)


def bench_app(url: str, **config):
    """The example host on ``url`` with the bench's key and a clock pinned to ``NOW``;
    rollups off unless ``config`` says otherwise (bench.rollups compares both)."""
    return create_app(
        {
            "OMNI_DATABASE_URL": url,
            "OMNI_API_KEY": KEY,
            "OMNI_CLOCK": lambda: NOW,
            "OMNI_DASHBOARD_ROLLUPS": "off",
            # Timed, not limited: a raw read at 100M events takes longer than any limit.
            "OMNI_DB_STATEMENT_TIMEOUT_MS": 0,
            "OMNI_DASHBOARD_STATEMENT_TIMEOUT_MS": 0,
            **config,
        }
    )


def freeze_loaded_heap() -> None:
    """Collect, then move every object the process holds now (modules, apps, loading) out
    of the garbage collector's reach, as the reference host's gunicorn workers do once the
    app is loaded (``post_worker_init``): a full collection then walks only what requests
    add (statements built on first use, answers in flight), not the whole heap."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Call:
    """One request to time: a label, the app that serves it, the URL."""

    label: str
    app: object
    url: str


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0-1) of the samples, by linear interpolation."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def measure(calls: list[Call], repeat: int, api_key: str, warmup: int = 2) -> dict[str, dict]:
    """Time every call ``repeat`` times, round-robin so that machine noise hits all alike.

    Returns ``{label: {"p50": ms, "p95": ms, "n": repeat}}``; a non-200 answer aborts.
    The heap built so far (the apps, loading, comparing) is frozen first
    (:func:`freeze_loaded_heap`).
    """
    freeze_loaded_heap()
    clients = {call.label: call.app.test_client() for call in calls}
    headers = {"x-api-key": api_key}
    samples: dict[str, list[float]] = {call.label: [] for call in calls}
    for round_no in range(warmup + repeat):
        for call in calls:
            started = time.perf_counter()
            response = clients[call.label].get(call.url, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{call.label}: HTTP {response.status_code} {response.data!r}")
            if round_no >= warmup:
                samples[call.label].append(elapsed)
    return {
        label: {"p50": percentile(s, 0.5), "p95": percentile(s, 0.95), "n": len(s)}
        for label, s in samples.items()
    }


def sized_parser(description: str) -> argparse.ArgumentParser:
    """Arguments shared by the benches that load and time several table sizes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    return parser
