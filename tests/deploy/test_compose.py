"""docker-compose.yml and its GPU override, checked without a Docker engine."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.compose_schema import compose_errors
from tests.deploy.deploy_files import COMPOSE, COMPOSE_GPU, METRICS_PORT, PROMETHEUS, load_yaml

LONG_RUNNING = ("kafka", "categorizer", "prometheus")
ONE_SHOTS = ("topic-init", "seed")


def services() -> dict[str, Any]:
    found: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return found


def categorizer_env() -> dict[str, str]:
    return {key: str(value) for key, value in services()["categorizer"]["environment"].items()}


def listeners(setting: str) -> dict[str, str]:
    """KAFKA_*LISTENERS as {name: host:port}."""
    value = services()["kafka"]["environment"][setting]
    return dict(entry.split("://", 1) for entry in value.split(","))


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Any) -> None:
    assert compose_errors(load_yaml(path)) == []


def test_depends_on_names_only_services_of_the_file() -> None:
    named = {dep for service in services().values() for dep in service.get("depends_on", {})}
    assert named <= set(services())


def test_categorizer_waits_for_a_healthy_kafka_and_completed_one_shots() -> None:
    conditions = {name: dep["condition"] for name, dep in services()["categorizer"]["depends_on"].items()}
    assert conditions == {
        "kafka": "service_healthy",
        "topic-init": "service_completed_successfully",
        "seed": "service_completed_successfully",
    }


def test_services_that_depends_on_waits_for_healthy_have_a_healthcheck() -> None:
    awaited = {
        name
        for service in services().values()
        for name, dep in service.get("depends_on", {}).items()
        if dep["condition"] == "service_healthy"
    }
    assert awaited
    assert all("test" in services()[name].get("healthcheck", {}) for name in awaited)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_restart_unless_stopped(name: str) -> None:
    assert services()[name]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", ONE_SHOTS)
def test_one_shot_services_are_not_restarted(name: str) -> None:
    assert services()[name]["restart"] == "no"


def test_kafka_advertises_a_localhost_listener_on_a_port_published_to_the_host() -> None:
    published = {port.split(":")[0]: port.split(":")[1] for port in services()["kafka"]["ports"]}
    advertised = listeners("KAFKA_ADVERTISED_LISTENERS").values()
    localhost_ports = {address.split(":")[1] for address in advertised if address.startswith("localhost:")}
    assert localhost_ports
    assert all(published.get(port) == port for port in localhost_ports)


def test_categorizer_bootstraps_from_an_advertised_in_network_listener() -> None:
    advertised = set(listeners("KAFKA_ADVERTISED_LISTENERS").values())
    assert categorizer_env()["KAFKA_BOOTSTRAP_SERVERS"] in advertised
    assert not categorizer_env()["KAFKA_BOOTSTRAP_SERVERS"].startswith("localhost:")


def test_topic_init_makes_the_topics_the_categorizer_uses() -> None:
    init_env = services()["topic-init"]["environment"]
    for setting in ("PRODCAT_INPUT_TOPIC", "PRODCAT_OUTPUT_TOPIC", "PRODCAT_DEAD_LETTER_TOPIC"):
        assert init_env[setting] == categorizer_env()[setting]


def test_seed_writes_the_registry_volume_the_categorizer_reads_read_only() -> None:
    registry = categorizer_env()["PRODCAT_REGISTRY"]
    assert f"registry:{registry}" in services()["seed"]["volumes"]
    assert f"registry:{registry}:ro" in services()["categorizer"]["volumes"]


def test_categorizer_is_healthy_only_once_ready() -> None:
    check = " ".join(services()["categorizer"]["healthcheck"]["test"])
    assert f":{METRICS_PORT}/readyz" in check
    assert categorizer_env()["PRODCAT_METRICS_PORT"] == str(METRICS_PORT)


def test_prometheus_scrapes_every_categorizer_on_the_metrics_port() -> None:
    (job,) = load_yaml(PROMETHEUS)["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["categorizer"]
    assert discovery["port"] == METRICS_PORT


def gpu_categorizer() -> dict[str, Any]:
    found: dict[str, Any] = load_yaml(COMPOSE_GPU)["services"]["categorizer"]
    return found


def test_gpu_override_reserves_an_nvidia_gpu_for_the_categorizer() -> None:
    (device,) = gpu_categorizer()["deploy"]["resources"]["reservations"]["devices"]
    assert (device["driver"], device["capabilities"]) == ("nvidia", ["gpu"])


def test_gpu_override_builds_cuda_torch_and_serves_on_cuda() -> None:
    assert gpu_categorizer()["build"]["args"]["VARIANT"] == "cuda"
    assert gpu_categorizer()["environment"]["PRODCAT_DEVICE"] == "cuda"
