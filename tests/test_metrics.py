"""/metrics, the job history and a real Prometheus: what operators watch agrees with /status."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.client import LabClient
from lab.config import Settings
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import settle, settled_run, wait_until

ROOT = Path(__file__).parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "lab.json"

FAMILIES = {
    "lab_jobs_released",
    "lab_jobs_processed",
    "lab_jobs_failed",
    "lab_jobs_dead_lettered",
    "lab_run_info",
    "lab_run_active",
    "lab_run_target_jobs",
    "lab_run_released_jobs",
    "lab_run_processed_jobs",
    "lab_run_failed_jobs",
    "lab_run_dead_lettered_jobs",
    "lab_scheduler_backlog_jobs",
    "lab_scheduler_release_rate_jobs_per_second",
    "lab_run_rate_limit_jobs_per_second",
    "lab_queue_ready_messages",
    "lab_queue_consumers",
    "lab_workers",
    "lab_worker_heartbeat_age_seconds",
    "lab_worker_processed_jobs",
    "lab_worker_cpu_seconds",
    "lab_worker_resident_memory_bytes",
    "lab_scheduler_leader",
    "lab_single_jobs",
    "lab_event_stream_entries",
    "lab_event_stream_lag_seconds",
    "lab_http_request_duration_seconds",
    "lab_service_up",
}


def scrape(settings: Settings) -> tuple[str, dict[str, list]]:
    response = httpx.get(f"{settings.api_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f.samples for f in text_string_to_metric_families(response.text)}
    return response.text, families


def value(families: dict[str, list], name: str, **labels: str) -> float:
    found = [
        s.value
        for samples in families.values()
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert found, f"no sample {name} {labels}"
    return sum(found)


def test_metrics_count_a_run_like_status_does_and_pass_promtool(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    x = 400
    run_id = settled_run(lab, client, stores, x, 120_000, workers=2)
    # Heartbeats carry each worker's count: wait for both to have reported the whole run.
    wait_until(
        lambda: sum(w["processed"] for w in client.status()["workers"]) == x, 20, "heartbeats"
    )
    text, families = scrape(settings)
    status = client.status()
    missing = FAMILIES - set(families)
    assert not missing, f"families missing from /metrics: {sorted(missing)}"

    assert value(families, "lab_run_processed_jobs") == status["processed"] == x
    assert value(families, "lab_run_released_jobs") == status["enqueued"] == x
    assert value(families, "lab_run_target_jobs") == x
    assert value(families, "lab_jobs_processed_total") == x  # a fresh lab: this run is all
    assert value(families, "lab_jobs_released_total") == x
    assert value(families, "lab_run_info", run_id=run_id, state="completed") == 1
    assert value(families, "lab_workers") == 2
    assert value(families, "lab_worker_processed_jobs_total") == x
    assert value(families, "lab_scheduler_leader") == 1
    assert value(families, "lab_queue_ready_messages", queue=settings.queue) == 0
    assert value(families, "lab_service_up", service="redis") == 1
    assert value(families, "lab_service_up", service="rabbitmq") == 1
    # Latency histograms: both workers' counts add up to the run, exactly.
    for family in ("queue_wait", "service", "end_to_end"):
        assert value(families, f"lab_job_{family}_seconds_count", kind="index") == x
        assert value(families, f"lab_job_{family}_seconds_bucket", kind="index", le="+Inf") == x
    measured = client.latency(run_id)
    assert measured["endToEnd"]["count"] == measured["service"]["count"] == x
    assert sum(w["count"] for w in measured["queueWait"]["windows"]) == x
    assert measured["endToEnd"]["p50Ms"] >= measured["service"]["p50Ms"] > 0
    # Routes are labelled by template, whatever path a client sent.
    httpx.get(f"{settings.api_url}/runs/no-such-run", timeout=10)
    httpx.get(f"{settings.api_url}/a/path/nobody/routes", timeout=10)
    _, later = wait_until(
        lambda: (lambda t, f: (t, f) if "/runs/{run_id}" in t else None)(*scrape(settings)),
        10,
        "the next exposition",
    )
    assert value(later, "lab_http_request_duration_seconds_count", route="/run", method="POST") >= 1
    assert value(later, "lab_http_request_duration_seconds_count", route="/runs/{run_id}") >= 1
    assert value(later, "lab_http_request_duration_seconds_count", route="unmatched") >= 1
    assert "/a/path" not in text

    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test-tools.sh"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Every query of the dashboard kept in the tree names a metric /metrics exports.
    exported = {s.name for samples in later.values() for s in samples} | set(later)
    exprs = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    assert exprs
    for expr in exprs:
        for name in re.findall(r"\blab_[a-z_]+", expr):
            assert name in exported, f"the dashboard asks for {name}, which /metrics lacks"


@pytest.mark.slow
def test_timeline_and_history_are_the_same_after_the_api_restarts(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    x = 300
    run_id = settled_run(lab, client, stores, x, 60_000)
    before = client.timeline(run_id)
    assert before["bucketSeconds"] == 1
    assert sum(p["released"] for p in before["points"]) == x
    assert sum(p["processed"] for p in before["points"]) == x
    recent = client.history(600)
    assert recent["bucketSeconds"] == 10
    assert sum(p["processed"] for p in recent["points"]) == x

    lab.restart("api")
    lab.wait_api()
    after = LabClient.of(settings).timeline(run_id)
    assert after == before
    assert sum(p["processed"] for p in client.history(600)["points"]) == x
    response = httpx.get(f"{settings.api_url}/runs/no-such-run/timeline", timeout=10)
    assert response.status_code == 404 and "no run" in response.json()["error"]
    response = httpx.get(f"{settings.api_url}/history", params={"seconds": "-5"}, timeout=10)
    assert response.status_code == 422


@pytest.mark.slow
def test_a_real_prometheus_scrapes_lab_and_promql_sees_the_run(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings, tmp_path: Path
) -> None:
    lab.up(workers=1)
    prometheus = servers.start_prometheus(
        servers.free_port(), tmp_path, [settings.api_url], scrape_interval_s=1
    )
    try:
        x = 500
        run_id = client.run(x, 60_000)["runId"]
        settle(stores, run_id, 60)

        def query(expr: str) -> list:
            answer = httpx.get(
                f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10
            ).json()
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        def processed() -> float | None:
            result = query("lab_run_processed_jobs")
            return float(result[0]["value"][1]) if result else None

        wait_until(lambda: processed() == x, 30, "Prometheus to see the whole run")
        targets = httpx.get(f"{prometheus.url}/api/v1/targets", timeout=10).json()
        lab_targets = [t for t in targets["data"]["activeTargets"] if t["labels"]["job"] == "lab"]
        assert [t["health"] for t in lab_targets] == ["up"]
        released = query("lab_jobs_released_total")
        assert float(released[0]["value"][1]) == x
        runs = query('sum(lab_http_request_duration_seconds_count{route="/run",method="POST"})')
        assert runs and float(runs[0]["value"][1]) >= 1
        assert run_id == query("lab_run_info")[0]["metric"]["run_id"]
    finally:
        prometheus.stop()


def test_the_alert_rules_pass_their_promtool_tests() -> None:
    """deploy/prometheus/alerts.yml: a stalled run, a high failure ratio, dead letters growing,
    a slow end to end; each fires on the series its test feeds it, and only then."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test-tools.sh"
    folder = ROOT / "deploy" / "prometheus"
    for argv in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *argv], capture_output=True, text=True, timeout=60,
                              cwd=folder)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
