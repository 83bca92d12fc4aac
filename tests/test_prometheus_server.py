"""A real Prometheus (Debian's package) scrapes the served host with the scrape config,
queries and alert rules of docs/prometheus.md; gunicorn workers in prometheus_client's
multiprocess mode report the live feed of all of them, whichever answers."""

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from host_example.seed import SeedPlan

from .client_support import requests_client
from .conftest import API_KEY, IN_CI, NOW, build_app
from .data import seeded
from .deploy_support import Gunicorn
from .live_support import NatsServer, Served, free_port, omni_message, publish, wait_for_port
from .waiting import CEILING, wait_until

pytestmark = pytest.mark.slow  # Prometheus and gunicorn

DOC = Path(__file__).resolve().parent.parent / "docs" / "prometheus.md"
JOB = "omni-dashboard"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if IN_CI:
            pytest.fail(f"CI=true: {name} (Debian's prometheus package) is required")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return found


class Prometheus:
    """prometheus on a free port, scraping ``target`` every second as the doc says."""

    def __init__(self, tmp_path: Path, target: str):
        scrape, rules = blocks("yaml")
        scrape = scrape.replace("omni.example.com:8000", target)
        scrape = scrape.replace("YOUR_OMNI_API_KEY", API_KEY)
        (tmp_path / "rules.yml").write_text(rules)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [{tmp_path / 'rules.yml'}]\n{scrape}"
        )
        self.port = free_port()
        self.log = (tmp_path / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        wait_until(self._ready, "Prometheus to get ready")

    def _ready(self) -> bool:
        try:  # it answers 503 while it loads its storage
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5):
                return True
        except urllib.error.HTTPError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list:
        return self.api("query", query=expression)["result"]

    def value(self, expression: str) -> float:
        (result,) = self.query(expression)
        return float(result["value"][1])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def histogram(text: str) -> list[tuple[float, float]]:
    """(le, cumulative count) of omni_event_processing_seconds in a scrape."""
    for family in text_string_to_metric_families(text):
        if family.name == "omni_event_processing_seconds":
            return sorted(
                (float(s.labels["le"]), s.value) for s in family.samples if "le" in s.labels
            )
    raise AssertionError("no processing histogram")


def bucket_of(buckets, rank) -> tuple[float, float]:
    """(lower, upper) bound of the first bucket whose cumulative count reaches ``rank``."""
    lower = 0.0
    for le, count in buckets:
        if count >= rank:
            return lower, le
        lower = le
    raise AssertionError(rank)


def test_prometheus_scrapes_the_documented_config(tmp_path):
    binary("prometheus")
    app = build_app(f"sqlite:///{tmp_path / 'p.db'}")
    seeded(app.extensions["omni_host"].engine, SeedPlan(events=3000, now=NOW))
    served = Served(app)
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{served.port}")
    try:

        def scraped_twice() -> bool:
            scrapes = prometheus.query(f'count_over_time(up{{job="{JOB}"}}[1m])')
            return bool(scrapes) and float(scrapes[0]["value"][1]) >= 2

        wait_until(scraped_twice, "Prometheus to scrape twice")
        assert prometheus.value(f'up{{job="{JOB}"}}') == 1
        client = app.test_client()
        headers = {"x-api-key": API_KEY}
        metrics = client.get("/api/v2/event-ops/metrics", headers=headers).get_json()["data"]
        stats = client.get("/api/v2/dead-letters/stats", headers=headers).get_json()["data"]
        assert prometheus.value("sum(omni_events_total)") == metrics["totalEvents"]
        pending = prometheus.value('omni_dead_letters{status="pending"}')
        assert pending == stats["pending"] > 0
        # histogram_quantile interpolates within the bucket holding rank 0.95 x count, and
        # the exact p95 (rank 0.95 x (count - 1)) lies in the bucket holding its rank.
        text = client.get("/api/v2/dashboard/metrics", headers=headers).get_data(as_text=True)
        buckets = histogram(text)
        total = buckets[-1][1]
        quantile = prometheus.value(
            "histogram_quantile(0.95, sum by (le) (omni_event_processing_seconds_bucket))"
        )
        low, high = bucket_of(buckets, 0.95 * total)
        assert low <= quantile <= high
        low, high = bucket_of(buckets, 0.95 * (total - 1) + 1)
        assert low < metrics["p95ProcessingTimeMs"] / 1000 <= high
        for expression in blocks("promql"):  # every documented query evaluates
            prometheus.query(expression.strip())

        def evaluated() -> list:  # every documented rule loaded and evaluated without error
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            return rules if rules and all(r.get("health") == "ok" for r in rules) else []

        rules = wait_until(evaluated, "every documented rule to evaluate")
        assert len(rules) == blocks("yaml")[1].count("- alert:")
    finally:
        prometheus.stop()
        served.close()


def test_promtool_accepts_the_documented_rules(tmp_path):
    rules = tmp_path / "rules.yml"
    documented = blocks("yaml")[1]
    rules.write_text(documented)
    check = subprocess.run(
        [binary("promtool"), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {documented.count('- alert:')} rules found" in check.stdout


def scraped_own(base: str) -> dict:
    """The plugin's own per-process families of one scrape, on a new connection (any
    worker)."""
    response = requests.get(
        f"{base}/api/v2/dashboard/metrics", headers={"x-api-key": API_KEY}, timeout=10
    )
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith(("omni_dashboard_stream", "omni_dashboard_nats")):
                found[sample.name] = sample.value
    return found


def test_gunicorn_workers_report_the_feed_of_all_of_them(tmp_path):
    """Two workers, four streams read with requests: every scrape, whichever worker answers
    it, counts the four streams and every delivery of both workers."""
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    server = Gunicorn(
        tmp_path,
        {
            "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
            "OMNI_API_KEY": API_KEY,
            "OMNI_NATS_URL": nats.url,
            "OMNI_DASHBOARD_STREAM_JETSTREAM": "off",
            "OMNI_DASHBOARD_STREAM_HEARTBEAT": 1,  # a closed stream is noticed within 1 s
            "PROMETHEUS_MULTIPROC_DIR": tmp_path / "prometheus",
            "WEB_CONCURRENCY": 2,
        },
    ).start()
    clients = []
    try:
        wait_for_port(server.port)
        url = f"{server.base}/api/v2/events/stream"
        for _ in range(4):
            clients.append(requests_client(url, API_KEY))
            clients[-1].wait_for(lambda name, _: name == "connected", CEILING)
        for _ in range(8):
            assert scraped_own(server.base)["omni_dashboard_stream_clients"] == 4
        wait_until(  # every worker's bridge (each connects at its first stream): min over them
            lambda: scraped_own(server.base).get("omni_dashboard_nats_connected") == 1,
            "every worker's bridge to connect to NATS",
        )
        publish(nats.url, [omni_message("message.received", n=n) for n in range(5)])
        for run in clients:
            for n in range(5):
                run.wait_for(
                    lambda name, data, n=n: data.get("id") == f"message.received-inst-1-{n}",
                    CEILING,
                )
        for _ in range(8):
            own = scraped_own(server.base)
            assert own["omni_dashboard_stream_deliveries_total"] == 20
            assert own["omni_dashboard_stream_overflows_total"] == 0
        for run in clients:
            run.close()
        wait_until(
            lambda: scraped_own(server.base)["omni_dashboard_stream_clients"] == 0,
            "closed streams to stop being counted",
        )
    finally:
        for run in clients:
            run.close()
        server.stop()
        nats.stop()
