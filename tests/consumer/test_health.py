import socket
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prodcat.consumer.health import HealthServer, Readiness, serve_health
from prodcat.consumer.metrics import Metrics
from prodcat.errors import ConfigError
from tests import http_probe

STALL_AFTER_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(clock=clock)


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
def server(metrics: Metrics, readiness: Readiness) -> Iterator[HealthServer]:
    with serve_health(metrics, readiness, port=0, host="127.0.0.1", stall_after_s=STALL_AFTER_S) as server:
        yield server


def get(server: HealthServer, path: str) -> tuple[int, str]:
    return http_probe.get(server.port, path)


def ready_readiness() -> Readiness:
    return Readiness(model_loaded=True, broker_reachable=True, assigned_partitions=3)


def test_healthz_is_alive_before_the_main_loop_starts(server: HealthServer, clock: Clock) -> None:
    clock.now += 10 * STALL_AFTER_S
    assert get(server, "/healthz") == (200, "ok\n")


def test_healthz_is_alive_while_the_main_loop_comes_round(
    server: HealthServer, metrics: Metrics, clock: Clock
) -> None:
    metrics.loop_alive(assigned_partitions=3)
    clock.now += STALL_AFTER_S / 2
    assert get(server, "/healthz")[0] == 200


def test_healthz_answers_503_once_the_started_main_loop_has_stalled(
    server: HealthServer, metrics: Metrics, clock: Clock
) -> None:
    metrics.loop_alive(assigned_partitions=3)
    clock.now += STALL_AFTER_S + 30
    status, body = get(server, "/healthz")
    assert status == 503
    assert body == f"main loop stalled for {STALL_AFTER_S + 30:.0f}s\n"


def test_readyz_answers_503_with_the_reason_until_ready(server: HealthServer, readiness: Readiness) -> None:
    readiness.model_loaded = True
    readiness.assigned_partitions = 2
    assert get(server, "/readyz") == (503, "broker not reachable\n")


def test_readyz_answers_200_once_ready(server: HealthServer, readiness: Readiness) -> None:
    readiness.model_loaded = True
    readiness.broker_reachable = True
    readiness.assigned_partitions = 2
    assert get(server, "/readyz") == (200, "ready: 2 partitions assigned\n")


def test_metrics_endpoint_serves_the_exposition_with_the_batch_histograms(
    server: HealthServer, metrics: Metrics
) -> None:
    metrics.observe_batch(size=8, real_tokens=100, padded_tokens=128, inference_s=0.01)
    status, body = get(server, "/metrics")
    families = {family.name: family for family in text_string_to_metric_families(body)}
    assert status == 200
    assert families["prodcat_batch_size"].type == "histogram"
    assert families["prodcat_batch_padded_tokens"].type == "histogram"


def test_unknown_paths_are_not_found(server: HealthServer) -> None:
    assert get(server, "/nope")[0] == 404


def test_closing_the_server_frees_its_port(metrics: Metrics, readiness: Readiness) -> None:
    server = serve_health(metrics, readiness, port=0, host="127.0.0.1", stall_after_s=STALL_AFTER_S)
    port = server.port
    server.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_a_port_in_use_is_a_configuration_error(
    server: HealthServer, metrics: Metrics, readiness: Readiness
) -> None:
    with pytest.raises(ConfigError, match=f"127.0.0.1:{server.port}"):
        serve_health(metrics, readiness, port=server.port, host="127.0.0.1", stall_after_s=STALL_AFTER_S)


def test_not_ready_before_anything_is_known() -> None:
    ready, reason = Readiness().ready()
    assert not ready
    assert reason == "model not loaded; broker not reachable; no partitions assigned yet"


def test_not_ready_while_waiting_for_topics() -> None:
    readiness = ready_readiness()
    readiness.waiting_for = "input topic products.raw"
    assert readiness.ready() == (False, "waiting for input topic products.raw")


def test_not_ready_without_the_model() -> None:
    readiness = ready_readiness()
    readiness.model_loaded = False
    assert readiness.ready() == (False, "model not loaded")


def test_not_ready_without_partitions_while_the_group_is_not_idle() -> None:
    readiness = ready_readiness()
    readiness.assigned_partitions = 0
    assert readiness.ready() == (False, "no partitions assigned yet")


def test_ready_without_partitions_when_the_group_is_legitimately_idle() -> None:
    readiness = ready_readiness()
    readiness.assigned_partitions = 0
    readiness.group_idle = True
    assert readiness.ready()[0]


def test_ready_says_when_the_model_is_served_from_the_cache_with_the_registry_unreachable() -> None:
    readiness = Readiness(model_loaded=True, broker_reachable=True, assigned_partitions=2)
    readiness.model_note = "serving cached version v1: registry unreachable at start"

    assert readiness.ready() == (
        True,
        "ready: 2 partitions assigned; serving cached version v1: registry unreachable at start",
    )
