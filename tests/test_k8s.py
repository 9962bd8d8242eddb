"""The Kubernetes manifests (deploy/k8s), validated offline: every object against the Kubernetes
API schemas, KEDA's objects by their fields, and the references between them."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .helpers import run_lab

K8S = Path(__file__).parent.parent / "deploy" / "k8s"
KUBERNETES = "1.30"
KEDA = {"ScaledObject", "TriggerAuthentication"}


def objects() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found = []
    for resource in kustomization["resources"]:
        found += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    return found


def by_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects() if o["kind"] == kind}


def containers() -> list[dict]:
    return [
        c
        for d in by_kind("Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    checked = 0
    for obj in objects():
        if obj["kind"] in KEDA:
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        checked += 1
    assert checked >= 12


def test_the_pieces_refer_to_each_other() -> None:
    deployments = by_kind("Deployment")
    assert {"lab-api", "lab-scheduler", "lab-worker", "lab-locust", "lab-locust-worker",
            "lab-jupyter"} <= set(deployments)  # fmt: skip
    assert deployments["lab-api"]["spec"]["replicas"] >= 2
    secret = by_kind("Secret")["lab-endpoints"]["stringData"]
    config = by_kind("ConfigMap")["lab-config"]["data"]
    for key in ("LAB_REDIS_URL", "LAB_AMQP_URL", "LAB_ES_URL"):
        assert key in secret
    assert len(secret["LAB_AMQP_URL"].split(",")) == 3  # every node of the cluster
    assert config["LAB_QUEUE_TYPE"] == "quorum"
    for name, deployment in deployments.items():
        template = deployment["spec"]["template"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= template["metadata"]["labels"].items()
        )
        for container in template["spec"]["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("secretRef") or source.get("configMapRef")
                assert ref["name"] in ("lab-endpoints", "lab-config"), name
    for name, service in by_kind("Service").items():
        assert any(
            service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in deployments.values()
        ), f"service {name} selects no pods"


def test_workers_scale_with_keda_on_the_job_queue() -> None:
    scaled = by_kind("ScaledObject")["lab-worker"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
    assert (
        trigger["metadata"]["queueName"] == by_kind("ConfigMap")["lab-config"]["data"]["LAB_QUEUE"]
    )
    auth = by_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    [target] = auth["spec"]["secretTargetRef"]
    assert target["key"] in by_kind("Secret")[target["name"]]["stringData"]


@pytest.mark.slow
def test_lab_containers_run_real_lab_commands() -> None:
    for container in containers():
        command = container["command"]
        if command[0] != "lab":
            assert command[:3] == ["locust", "-f", "/app/loadtests/locustfile.py"]
            continue
        done = run_lab(*command[1:], "--help", timeout=60)
        assert done.returncode == 0, (command, done.stderr)
