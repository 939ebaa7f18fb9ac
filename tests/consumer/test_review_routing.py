"""Review routing in the service, on the embedded broker: flagged events go to the output and
the review topic, unflagged ones only to the output, and every offset is committed."""

from __future__ import annotations

import statistics
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.source import Record, read_topic
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from tests.schemas.published import assert_published

WAIT_S = 60.0
TITLES = (
    "Silk Scarf",
    "Baby Stroller",
    "Stainless Steel Chef Knife 8 inch",
    "Wireless Bluetooth Headphones",
    "Organic Cotton Muslin Swaddle Blanket",
    "Leather Ankle Boots",
    "Garden Hose 50ft",
    "Kids Puzzle 100 pieces",
)


@pytest.fixture(scope="module")
def plain(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


def values(count: int) -> list[bytes]:
    return [
        orjson.dumps({"id": f"r-{n}", "seq": n, "title": f"{TITLES[n % len(TITLES)]} {n}"})
        for n in range(count)
    ]


def median_confidence(model: TorchModel, documents: list[bytes]) -> float:
    """A threshold that flags about half of these events, whatever the tiny model learned."""
    titles = [orjson.loads(v)["title"] for v in documents]
    scores = [row[0] for row in model.infer(model.encode(titles), top_k=1).scores]
    return float(statistics.median(scores))


def read(settings: ConsumerSettings, topic: str, expected: int) -> list[Record]:
    """Committed records only: with exactly-once, an aborted transaction's are not outputs."""
    config = {**kafka_client_config(settings), "isolation.level": "read_committed"}
    return read_topic(config, topic, expected=expected, timeout_s=WAIT_S, settle_s=1.0)


def committed_everything(settings: ConsumerSettings, inputs: list[Record]) -> bool:
    ends: dict[int, int] = {}
    for record in inputs:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    consumer = Consumer({**kafka_client_config(settings), "group.id": settings.group_id})
    try:
        committed = consumer.committed([TopicPartition(settings.input_topic, p) for p in ends], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset == ends[tp.partition] for tp in committed)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_flagged_events_go_to_both_topics_and_unflagged_only_to_the_output(
    delivery: str, kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    documents = values(40)
    threshold = median_confidence(plain, documents)
    settings = scratch_settings(
        kafka_bootstrap,
        "review",
        registry=trained_registry,
        device="cpu",
        review_threshold=threshold,
        review_topic=f"review-{uuid.uuid4().hex[:8]}.products.review",
        create_topics=True,
        delivery=delivery,
    )
    assert settings.review_topic is not None
    produce_values(documents, settings)
    metrics = Metrics()

    summary = CategorizerService(settings, FixedModel(plain), metrics=metrics).run(
        until_records=len(documents)
    )

    assert (summary.enriched, summary.dead_lettered) == (len(documents), 0)
    inputs = read(settings, settings.input_topic, len(documents))
    outputs = read(settings, settings.output_topic, len(documents))
    dead = read(settings, settings.dead_letter_topic, 0)
    assert_published(outputs, dead)
    assert not dead
    enriched = {orjson.loads(r.value or b"")["id"]: r for r in outputs}
    assert len(enriched) == len(documents)
    flagged = {
        key: r
        for key, r in enriched.items()
        if orjson.loads(r.value or b"")["classification"].get("needs_review") is True
    }
    for record in outputs:
        classification = orjson.loads(record.value or b"")["classification"]
        low = classification["confidence"] < threshold
        assert classification.get("needs_review", False) is low
        assert classification.get("review_reason") == ("low_confidence" if low else None)
    assert 0 < len(flagged) < len(documents)
    reviewed = read(settings, settings.review_topic, len(flagged))
    assert_published(reviewed, [])
    assert sorted((r.key, r.value) for r in reviewed) == sorted((r.key, r.value) for r in flagged.values())
    labels = [orjson.loads(r.value or b"")["classification"]["label"] for r in flagged.values()]
    expected = {label: labels.count(label) for label in set(labels)}
    assert metrics.flagged_for_review_by_label == expected
    assert committed_everything(settings, inputs)


def test_without_review_settings_nothing_is_flagged(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    documents = values(12)
    settings = scratch_settings(kafka_bootstrap, "noreview", registry=trained_registry, device="cpu")
    produce_values(documents, settings)
    metrics = Metrics()

    CategorizerService(settings, FixedModel(plain), metrics=metrics).run(until_records=len(documents))

    outputs = read(settings, settings.output_topic, len(documents))
    assert len(outputs) == len(documents)
    for record in outputs:
        classification = orjson.loads(record.value or b"")["classification"]
        assert "needs_review" not in classification
        assert "embedding" not in classification
    assert metrics.flagged_for_review_by_label == {}
