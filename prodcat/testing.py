"""Integration-testing your own producers and subscribers against a real categorizer.

In a test suite, `pytest_plugins = ["prodcat.testing"]` in a conftest.py gives the
fixture `prodcat_kafka` (a bootstrap string), and `running_categorizer(settings)` runs
the service in the background for the body of a `with` block:

    def test_my_pipeline(prodcat_kafka, tmp_path):
        settings = scratch_settings(prodcat_kafka, "mine", registry=MY_REGISTRY, device="cpu")
        with running_categorizer(settings):
            my_producer.send(settings.input_topic, ...)
            ... read settings.output_topic and check what arrived ...

The broker is the one `KAFKA_BOOTSTRAP_SERVERS` names; else a Testcontainers Kafka
when a Docker engine answers; else the embedded broker (`prodcat[embedded]`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from prodcat.broker import EmbeddedBroker
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService
from prodcat.model.loading import load_model
from prodcat.model.runtime import ServingModel

STOP_TIMEOUT_S = 60.0


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        # Any failure (no client library, no socket, no engine) means: no Docker here.
        return False
    return True


@contextmanager
def kafka_broker() -> Iterator[str]:
    """A Kafka bootstrap string for the duration of the block, from the best source available."""
    configured = kafka_bootstrap_from_env()
    if configured:
        yield configured
    elif docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers


@contextmanager
def running_categorizer(
    settings: ConsumerSettings, model: ServingModel | None = None
) -> Iterator[CategorizerService]:
    """The categorizer service consuming in a background thread until the block ends.

    On exit it drains and commits like a SIGTERM'd process; an error inside the service
    is raised here rather than lost in its thread.
    """
    serving = model or load_model(
        settings.registry,
        model_name=settings.model_name,
        device=settings.device,
        min_agreement=settings.min_golden_agreement,
    )
    service = CategorizerService(settings, FixedModel(serving))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            service.run()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="categorizer", daemon=True)
    worker.start()
    try:
        yield service
    finally:
        service.stop()
        worker.join(STOP_TIMEOUT_S)
    if worker.is_alive():
        raise RuntimeError(f"the categorizer did not stop within {STOP_TIMEOUT_S:.0f}s")
    if failure:
        raise failure[0]


@pytest.fixture(scope="session")
def prodcat_kafka() -> Iterator[str]:
    """A Kafka-protocol broker's bootstrap servers, shared by the test session."""
    with kafka_broker() as bootstrap:
        yield bootstrap
