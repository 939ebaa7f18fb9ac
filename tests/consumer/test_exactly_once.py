"""`--delivery exactly-once` against the embedded broker, as far as it supports transactions.

What these show on Tansu: outputs and the offsets they account for commit together and
are visible to read_committed readers; a second producer with the same transactional id
fences the first, which stops with one DeliveryError instead of committing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, RunSummary, transactional_id
from prodcat.errors import DeliveryError
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.testing import kafka_broker

PARTITIONS = 2


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    """A broker of their own: transactions are where the embedded broker is least proven, and a
    broker lost here must not take the rest of the suite with it."""
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def model(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


def exactly_once_settings(bootstrap: str, registry: Path) -> ConsumerSettings:
    return scratch_settings(
        bootstrap, "eos", partitions=PARTITIONS, registry=registry, device="cpu", delivery="exactly-once"
    )


def events(prefix: str, count: int) -> list[bytes]:
    return [orjson.dumps({"id": f"{prefix}-{n}", "title": "Silk Scarf"}) for n in range(count)]


def read_committed(settings: ConsumerSettings, expected: int) -> list[bytes]:
    reader = Consumer(
        {**kafka_client_config(settings), "group.id": "eos-reader", "isolation.level": "read_committed"}
    )
    reader.assign([TopicPartition(settings.output_topic, p, 0) for p in range(PARTITIONS)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(values) < expected and time.monotonic() < deadline:
        values += [m.value() or b"" for m in reader.consume(100, 0.5) if m.error() is None]
    reader.close()
    return values


def test_outputs_and_their_offsets_commit_together(
    kafka_bootstrap: str, trained_registry: Path, model: TorchModel
) -> None:
    settings = exactly_once_settings(kafka_bootstrap, trained_registry)
    produce_values(events("a", 30), settings)

    CategorizerService(settings, FixedModel(model)).run(until_records=30)

    assert sorted(orjson.loads(v)["id"] for v in read_committed(settings, 30)) == sorted(
        f"a-{n}" for n in range(30)
    )
    group = Consumer({**kafka_client_config(settings), "group.id": settings.group_id})
    committed = group.committed([TopicPartition(settings.input_topic, p) for p in range(PARTITIONS)], 10)
    group.close()
    assert sum(tp.offset for tp in committed) == 30


def test_a_member_fenced_by_a_newer_instance_of_itself_stops_without_committing(
    kafka_bootstrap: str, trained_registry: Path, model: TorchModel
) -> None:
    settings = exactly_once_settings(kafka_bootstrap, trained_registry)
    service = CategorizerService(settings, FixedModel(model))
    outcome: list[RunSummary | BaseException] = []

    def run() -> None:
        try:
            outcome.append(service.run())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    produce_values(events("b", 10), settings)
    while service.metrics.enriched_total < 10 and worker.is_alive():
        time.sleep(0.1)
    successor = Producer({**kafka_client_config(settings), "transactional.id": transactional_id(settings, 0)})
    successor.init_transactions(10)
    produce_values(events("c", 10), settings)
    worker.join(60)
    if worker.is_alive():
        service.stop()
        worker.join(30)

    assert len(outcome) == 1 and isinstance(outcome[0], DeliveryError)
    assert "fenced" in str(outcome[0])
    assert not any(orjson.loads(v)["id"].startswith("c-") for v in read_committed(settings, 10))
