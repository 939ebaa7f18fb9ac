"""deploy/k8s, checked offline: built-in kinds against the Kubernetes schemas, custom resources
(KEDA, Prometheus Operator) by the fields they need, and the numbers that must agree across files."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.deploy_files import (
    K8S,
    METRICS_PORT,
    config_data,
    container,
    kubernetes_files,
    kubernetes_objects,
    kustomizations,
    load_yaml,
    one,
)

# The oldest Kubernetes release whose schemas the manifests are held to.
KUBERNETES_VERSION = "1.30"
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}
BUILT_IN = [(path, doc) for path, doc in kubernetes_objects() if doc["kind"] not in CUSTOM_KINDS]
VARIANTS = ("cpu", "gpu")


def deployment(variant: str) -> dict[str, Any]:
    return one("Deployment", variant)


def pod_spec(variant: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(variant)["spec"]["template"]["spec"]
    return spec


def kafka_trigger() -> dict[str, Any]:
    (trigger,) = one("ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    return dict(trigger)


@pytest.mark.parametrize(
    ("path", "document"), BUILT_IN, ids=[f"{p.relative_to(K8S)}:{d['kind']}" for p, d in BUILT_IN]
)
def test_built_in_objects_follow_the_kubernetes_schema(path: Path, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_resources_exist(path: Path) -> None:
    for resource in load_yaml(path)["resources"]:
        assert (path.parent / resource).exists(), f"{path.relative_to(K8S)} lists missing {resource}"


def test_every_manifest_outside_examples_is_in_a_kustomization() -> None:
    listed = {
        (path.parent / resource).resolve()
        for path in kustomizations()
        for resource in load_yaml(path)["resources"]
    }
    unlisted = [p for p in kubernetes_files() if p.resolve() not in listed and p.parent.name != "examples"]
    assert unlisted == []


def test_scaled_object_targets_the_deployment_with_a_kafka_trigger() -> None:
    spec = one("ScaledObject")["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment("cpu")["metadata"]["name"]
    assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} <= set(kafka_trigger()["metadata"])


def test_scaled_object_caps_replicas_at_one_member_per_input_partition() -> None:
    partitions = int(config_data()["PRODCAT_TOPIC_PARTITIONS"])
    members_per_pod = int(config_data()["PRODCAT_PROCESSES"])
    assert one("ScaledObject")["spec"]["maxReplicaCount"] == partitions // members_per_pod


def test_scaled_object_never_scales_to_zero() -> None:
    assert one("ScaledObject")["spec"]["minReplicaCount"] >= 1


def test_kafka_trigger_watches_the_group_and_topic_the_categorizer_uses() -> None:
    metadata = kafka_trigger()["metadata"]
    config = config_data()
    assert (metadata["bootstrapServers"], metadata["consumerGroup"], metadata["topic"]) == (
        config["KAFKA_BOOTSTRAP_SERVERS"],
        config["PRODCAT_GROUP_ID"],
        config["PRODCAT_INPUT_TOPIC"],
    )


def test_kafka_trigger_authenticates_from_the_kafka_secret() -> None:
    authentication = one("TriggerAuthentication")
    assert kafka_trigger()["authenticationRef"]["name"] == authentication["metadata"]["name"]
    secret = one("Secret")
    for ref in authentication["spec"]["secretTargetRef"]:
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]


def test_service_monitor_scrapes_the_metrics_port_of_the_service() -> None:
    monitor, service = one("ServiceMonitor"), one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = service["spec"]["ports"]
    assert (endpoint["port"], endpoint["path"], port["port"]) == (port["name"], "/metrics", METRICS_PORT)


def test_service_and_disruption_budget_select_the_categorizer_pods() -> None:
    labels = deployment("cpu")["spec"]["template"]["metadata"]["labels"]
    assert one("Service")["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_ask_healthz_for_liveness_and_readyz_for_readiness(variant: str) -> None:
    probes = container(deployment(variant))
    names = ("startupProbe", "livenessProbe", "readinessProbe")
    paths = {name: probes[name]["httpGet"]["path"] for name in names}
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_use_the_port_the_service_metrics_are_served_on(variant: str) -> None:
    (port,) = container(deployment(variant))["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", int(config_data()["PRODCAT_METRICS_PORT"]))


@pytest.mark.parametrize("variant", VARIANTS)
def test_grace_period_outlasts_the_drain(variant: str) -> None:
    drain_s = float(config_data()["PRODCAT_SHUTDOWN_TIMEOUT_S"])
    assert pod_spec(variant)["terminationGracePeriodSeconds"] > drain_s


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_run_as_a_numeric_non_root_user(variant: str) -> None:
    security = pod_spec(variant)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert isinstance(security["runAsUser"], int) and security["runAsUser"] > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_containers_have_a_read_only_root_and_no_privilege_escalation(variant: str) -> None:
    security = container(deployment(variant))["securityContext"]
    assert (security["readOnlyRootFilesystem"], security["allowPrivilegeEscalation"]) == (True, False)


def test_the_registry_is_on_object_storage_without_a_shared_volume() -> None:
    assert config_data()["PRODCAT_REGISTRY"].startswith("s3://")
    claims = [path for path, doc in kubernetes_objects() if doc["kind"] == "PersistentVolumeClaim"]
    assert [path.parent.name for path in claims] == ["pvc"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_model_cache_is_an_empty_dir_mounted_where_the_cache_dir_points(variant: str) -> None:
    volumes = {v["name"]: v for v in pod_spec(variant)["volumes"]}
    (mount,) = [
        m
        for m in container(deployment(variant))["volumeMounts"]
        if m["mountPath"] == config_data()["PRODCAT_CACHE_DIR"]
    ]
    assert "emptyDir" in volumes[mount["name"]]
    assert not any("persistentVolumeClaim" in v for v in volumes.values())


@pytest.mark.parametrize("variant", VARIANTS)
def test_registry_credentials_come_from_the_service_account_or_an_optional_secret(variant: str) -> None:
    assert pod_spec(variant)["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    secrets = [s["secretRef"] for s in container(deployment(variant))["envFrom"] if "secretRef" in s]
    assert secrets == [{"name": "prodcat-registry", "optional": True}]
    example = [
        doc
        for path, doc in kubernetes_objects()
        if path.parent.name == "examples" and doc["kind"] == "Secret"
    ]
    assert "prodcat-registry" in {doc["metadata"]["name"] for doc in example}


def test_the_seed_job_publishes_to_the_registry_the_categorizer_reads() -> None:
    job = one("Job", "seed")
    (seed,) = job["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": one("ConfigMap")["metadata"]["name"]}} in seed["envFrom"]
    assert '--registry "$PRODCAT_REGISTRY"' in seed["args"][0]
    assert (
        job["spec"]["template"]["spec"]["serviceAccountName"]
        == one("ServiceAccount", "seed")["metadata"]["name"]
    )


OVERLAYS = ("cpu", "gpu", "seed", "cpu-pvc", "seed-pvc")


def built(overlay: str) -> list[dict[str, Any]]:
    """What `kubectl kustomize` makes of an overlay (skipped where kubectl is not installed)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_builds_into_objects_that_follow_the_kubernetes_schema(overlay: str) -> None:
    for document in built(overlay):
        if document["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_pvc_overlay_mounts_the_claim_read_only_where_the_registry_points() -> None:
    objects = {doc["kind"]: doc for doc in built("cpu-pvc")}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert (
        volume["persistentVolumeClaim"]["claimName"] == objects["PersistentVolumeClaim"]["metadata"]["name"]
    )
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert (mount["mountPath"], mount["readOnly"]) == (objects["ConfigMap"]["data"]["PRODCAT_REGISTRY"], True)


def test_the_pvc_seed_writes_the_claim_it_publishes_to() -> None:
    (job,) = [doc for doc in built("seed-pvc") if doc["kind"] == "Job"]
    (seed,) = job["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in seed["volumeMounts"] if m["name"] == "registry"]
    assert {"name": "PRODCAT_REGISTRY", "value": mount["mountPath"]} in seed["env"]
    assert not mount.get("readOnly", False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_kafka_settings_come_from_the_secret(variant: str) -> None:
    env = {e["name"]: e for e in container(deployment(variant))["env"]}
    ref = env["PRODCAT_KAFKA"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (one("Secret")["metadata"]["name"], "PRODCAT_KAFKA")


def test_cpu_deployment_requests_cpu_and_memory_but_no_gpu() -> None:
    resources = container(deployment("cpu"))["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "nvidia.com/gpu" not in resources["limits"]


def test_gpu_deployment_asks_for_one_nvidia_gpu_on_cuda() -> None:
    gpu = container(deployment("gpu"))
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "PRODCAT_DEVICE", "value": "cuda"} in gpu["env"]


def test_gpu_deployment_differs_from_cpu_only_in_image_device_resources_and_tolerations() -> None:
    def without_variant_fields(variant: str) -> dict[str, Any]:
        manifest = copy.deepcopy(deployment(variant))
        spec = manifest["spec"]["template"]["spec"]
        spec.pop("tolerations", None)
        (main,) = spec["containers"]
        for field in ("image", "resources"):
            main.pop(field)
        main["env"] = [e for e in main["env"] if e["name"] != "PRODCAT_DEVICE"]
        return manifest

    assert without_variant_fields("gpu") == without_variant_fields("cpu")
