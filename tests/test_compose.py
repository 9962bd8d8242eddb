"""docker-compose.yml is checked without a Docker engine: structure, health, dependencies, and
that every lab service runs a real `lab` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .helpers import run_lab

ROOT = Path(__file__).parent.parent
LAB_SERVICES = ("api", "scheduler", "worker", "jupyter")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_healthchecked_and_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    expected = {"redis", "rabbitmq", "elasticsearch", "kibana", "locust", "prometheus", "grafana"}
    assert {*expected, *LAB_SERVICES} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule["condition"] == "service_healthy", (name, dependency)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["kibana"]["profiles"] == ["kibana"]
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]


def test_the_locust_service_runs_the_project_locustfile() -> None:
    command = compose()["services"]["locust"]["command"]
    assert command[:3] == ["locust", "-f", "/app/loadtests/locustfile.py"]
    assert (ROOT / "loadtests" / "locustfile.py").is_file()
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert {"StatusUser", "MixedUser", "StatusRateUser"} <= set(done.stdout.split())
    # The master takes its load from a scalable worker service running the same file.
    assert "--master" in command
    worker = compose()["services"]["locust-worker"]
    assert worker["command"][:3] == command[:3] and "--worker" in worker["command"]
    assert "ports" not in worker and "container_name" not in worker


def test_lab_services_run_real_lab_commands_with_lab_settings() -> None:
    services = compose()["services"]
    for name in LAB_SERVICES:
        command = services[name]["command"]
        assert command[0] == "lab", (name, command)
        done = run_lab(*command[1:], "--help", timeout=60)
        assert done.returncode == 0, (name, done.stderr)
        env = services[name]["environment"]
        assert all(key.startswith("LAB_") for key in env), name
        for key in ("LAB_REDIS_URL", "LAB_AMQP_URL", "LAB_ES_URL", "LAB_API_URL"):
            assert key in env, (name, key)


def compose_config(folder: Path, env: str, *args: str) -> subprocess.CompletedProcess:
    """`docker-compose config` on a copy of the file in `folder`, with `env` as its `.env` (the
    README's first step copies `.env.example` there)."""
    shutil.copy(ROOT / "docker-compose.yml", folder)
    shutil.copytree(ROOT / "deploy", folder / "deploy")
    (folder / ".env").write_text(env)
    return subprocess.run(
        ["docker-compose", "-f", str(folder / "docker-compose.yml"), *args, "config"],
        capture_output=True, text=True, timeout=60, cwd=folder,
    )  # fmt: skip


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    """Debian's docker-compose checks the file against the Compose schema, with every profile."""
    example = (ROOT / ".env.example").read_text()
    done = compose_config(tmp_path, example, "--profile", "kibana", "--profile", "es-cluster")
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "docker-compose.yml"), "--profile", "kibana",
         "--profile", "es-cluster", "config", "--services"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == set(compose()["services"])


def test_prometheus_and_grafana_are_provisioned_from_the_tree(tmp_path: Path) -> None:
    """Compose's Prometheus scrapes the API with a config promtool accepts; Grafana gets the
    data source the dashboard names and loads the dashboard kept in the tree."""
    import json
    import shutil

    services = compose()["services"]
    mounts = {
        name: {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"] if ":" in v}
        for name in ("prometheus", "grafana")
    }
    config = ROOT / mounts["prometheus"]["/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load(config.read_text())
    lab_job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "lab")
    assert lab_job["static_configs"][0]["targets"] == ["api:8000"]
    assert lab_job["metrics_path"] == "/metrics"
    assert "LAB_API_TOKEN" in services["prometheus"]["environment"]
    assert lab_job["authorization"]["credentials_file"] in services["prometheus"]["entrypoint"][2]

    token = tmp_path / "lab-token"
    token.write_text("")
    local = tmp_path / "prometheus.yml"
    local.write_text(config.read_text().replace("/prometheus/lab-token", str(token)))
    # The alert rules are mounted beside the config, where its `rule_files` finds them.
    shutil.copy(ROOT / mounts["prometheus"]["/etc/prometheus/alerts.yml"], tmp_path / "alerts.yml")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by scripts/test-tools.sh"
    checked = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    provisioning = ROOT / mounts["grafana"]["/etc/grafana/provisioning"]
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "lab.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    dashboards = ROOT / mounts["grafana"][folder]
    dashboard = json.loads((dashboards / "lab.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_every_setting_in_env_reaches_the_lab_containers(tmp_path: Path) -> None:
    """`.env` is the one place to configure the lab under compose: every `LAB_*` setting in it
    reaches the api, scheduler, worker and jupyter containers, but for the service URLs (and the
    API's host names), which compose pins."""
    from dataclasses import fields

    from lab.config import Settings

    pinned = {"LAB_REDIS_URL", "LAB_AMQP_URL", "LAB_ES_URL", "LAB_API_URL", "LAB_PROMETHEUS_URL"}
    values = {}
    for field in fields(Settings):
        name = f"LAB_{field.name.upper()}"
        if name not in pinned:
            # A value no default has, of the setting's own type.
            default = field.default
            values[name] = (
                str(default + 7) if isinstance(default, (int, float)) else f"{field.name}-from-env"
            )
    done = compose_config(tmp_path, "".join(f"{k}={v}\n" for k, v in values.items()))
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    for name in LAB_SERVICES:
        env = services[name]["environment"]
        wrong = {k: env.get(k) for k, v in values.items() if str(env.get(k)) != v}
        assert not wrong, (name, wrong)


def test_the_faults_override_puts_toxiproxy_between_the_lab_and_its_services(
    tmp_path: Path,
) -> None:
    """`-f docker-compose.faults.yml`: the real Toxiproxy, its proxies named and placed as lab's
    own fault proxy places them, every lab process reaching the services only through it."""
    shutil.copy(ROOT / "docker-compose.faults.yml", tmp_path)
    done = compose_config(tmp_path, (ROOT / ".env.example").read_text(),
                          "-f", str(tmp_path / "docker-compose.faults.yml"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    merged = yaml.safe_load(done.stdout)["services"]
    assert merged["toxiproxy"]["healthcheck"] and merged["toxiproxy"]["ports"]
    for name in LAB_SERVICES:
        env = merged[name]["environment"]
        assert env["LAB_REDIS_URL"] == "redis://toxiproxy:17379/0", name
        assert "toxiproxy:16672" in env["LAB_AMQP_URL"] and "toxiproxy:20200" in env["LAB_ES_URL"]
        assert "toxiproxy" in merged[name]["depends_on"] and "redis" in merged[name]["depends_on"]
    assert merged["api"]["environment"]["LAB_API_URL"] == "http://0.0.0.0:8000"  # still its own

    from lab.config import Settings
    from lab.ops.faults import plan

    config = json.loads((ROOT / "deploy" / "toxiproxy" / "toxiproxy.json").read_text())
    ours = plan.proxies_for(Settings())
    assert [(p["name"], p["listen"].rpartition(":")[2]) for p in config] == [
        (p["name"], p["listen"].rpartition(":")[2]) for p in ours
    ]
