"""The shadow in the service, on the embedded broker: a candidate (a second real model) runs
on sampled batches beside the serving model, never changes an output or an offset, and its
verdicts, joined to labels arriving on the labels topic, reach the judge's summary."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, summary_writer
from prodcat.consumer.shadow import ShadowJudge
from prodcat.consumer.source import read_topic
from prodcat.model.loading import load_model
from prodcat.model.registry import open_registry
from prodcat.model.runtime import ServingModel, TorchModel
from prodcat.produce import produce_values
from prodcat.schemas.shadow import ShadowSummary
from prodcat.scratch import scratch_settings
from prodcat.trainer.promotion import read_summaries
from prodcat.trainer.train import TrainConfig, train

WAIT_S = 60.0
TITLES = (
    "Silk Scarf",
    "Baby Stroller with Canopy",
    "Stainless Steel Chef Knife 8 inch",
    "Wireless Bluetooth Headphones",
    "Organic Cotton Muslin Swaddle Blanket",
    "Leather Ankle Boots",
    "Garden Hose 50ft",
    "Kids Puzzle 100 pieces",
)


class TwoModels:
    """A `ModelSource` serving one model for good, with a second as the registry's candidate."""

    def __init__(self, current: ServingModel, candidate: ServingModel | None) -> None:
        self._current = current
        self._candidate = candidate

    @property
    def current(self) -> ServingModel:
        return self._current

    def poll(self) -> ServingModel | None:
        return None

    @property
    def candidate(self) -> ServingModel | None:
        return self._candidate

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def plain(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


@pytest.fixture(scope="module")
def candidate(corpus: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> TorchModel:
    """A second real model: another seed, a shorter run, so it disagrees now and then."""
    result = train(
        TrainConfig(
            data=corpus,
            base_model=str(tiny_base),
            registry=tmp_path_factory.mktemp("candidate"),
            full_finetune=True,
            learning_rate=1e-3,
            epochs=0.5,
            seed=7,
            progress=False,
        )
    )
    model = load_model(result.checkpoint, device="cpu", min_agreement=0.0)
    return model


def top1(model: ServingModel, titles: list[str]) -> list[str]:
    inference = model.infer(model.encode(titles), top_k=1)
    return [model.labels[row[0]] for row in inference.indices]


def committed(settings: ConsumerSettings) -> dict[int, int]:
    consumer = Consumer({**kafka_client_config(settings), "group.id": settings.group_id})
    try:
        partitions = [TopicPartition(settings.input_topic, p) for p in range(3)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_the_candidate_is_judged_on_live_batches_and_labels_without_changing_outputs(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel, candidate: TorchModel
) -> None:
    labels_topic = f"labels-{uuid.uuid4().hex[:8]}"
    settings = scratch_settings(
        kafka_bootstrap,
        "shadow",
        registry=trained_registry,
        device="cpu",
        shadow_fraction=1.0,
        labels_topic=labels_topic,
        create_topics=True,
        reload_interval_s=0.2,
    )
    titles = [f"{TITLES[n % len(TITLES)]} {n}" for n in range(32)]
    documents = [orjson.dumps({"id": f"s-{n}", "title": t}) for n, t in enumerate(titles)]
    produce_values(documents, settings)
    summaries: list[ShadowSummary] = []
    service = CategorizerService(settings, TwoModels(plain, candidate), on_shadow_summary=summaries.append)
    worker = threading.Thread(target=service.run, daemon=True)
    worker.start()
    try:
        wait_for(lambda: summaries and summaries[-1].compared == len(titles), "every event compared")
        serving = top1(plain, titles)
        # The stand-in labeller agrees with the serving model on every event.
        labels = [
            orjson.dumps({"id": f"s-{n}", "title": t, "label": serving[n], "source": "test"})
            for n, t in enumerate(titles)
        ]
        produce_values(labels, settings.model_copy(update={"input_topic": labels_topic}))
        wait_for(lambda: summaries[-1].live.judged == len(titles), "every label joined")
    finally:
        service.stop()
        worker.join(WAIT_S)

    theirs = top1(candidate, titles)
    agreeing = sum(s == c for s, c in zip(serving, theirs, strict=True))
    assert 0 < agreeing < len(titles), "the two models should disagree on some titles"
    final = summaries[-1]
    assert (final.serving_version, final.candidate_version) == (plain.version, candidate.version)
    assert final.compared == len(titles)
    assert final.agreed == agreeing
    assert final.live.serving_correct == len(titles)
    assert final.live.candidate_correct == agreeing
    outputs = read_topic(
        kafka_client_config(settings), settings.output_topic, expected=len(documents), timeout_s=WAIT_S
    )
    by_id = {orjson.loads(r.value or b"")["id"]: orjson.loads(r.value or b"") for r in outputs}
    assert len(by_id) == len(documents)
    for n in range(len(titles)):
        classification = by_id[f"s-{n}"]["classification"]
        assert classification["model_version"] == plain.version
        assert classification["label"] == serving[n]
    inputs = read_topic(kafka_client_config(settings), settings.input_topic, expected=len(documents))
    ends: dict[int, int] = {}
    for record in inputs:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    assert {p: o for p, o in committed(settings).items() if p in ends} == ends


def test_without_a_candidate_no_batch_is_sampled(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    settings = scratch_settings(
        kafka_bootstrap, "noshadow", registry=trained_registry, device="cpu", shadow_fraction=1.0
    )
    documents = [orjson.dumps({"id": f"n-{n}", "title": TITLES[n % len(TITLES)]}) for n in range(8)]
    produce_values(documents, settings)
    summaries: list[ShadowSummary] = []

    CategorizerService(settings, TwoModels(plain, None), on_shadow_summary=summaries.append).run(
        until_records=len(documents)
    )

    assert summaries == []


def test_summaries_of_a_local_registry_are_written_where_the_promotion_gate_reads_them(
    tmp_path: Path, plain: TorchModel, candidate: TorchModel
) -> None:
    model_dir = tmp_path / plain.model_name
    model_dir.mkdir()
    judge = ShadowJudge(
        model_name=plain.model_name,
        serving_version=plain.version,
        candidate_version=candidate.version,
        labels=plain.labels,
        member="group.host.0",
        fraction=0.5,
    )
    settings = ConsumerSettings(registry=str(tmp_path))

    summary_writer(settings)(judge.summary())

    (written,) = read_summaries(open_registry(tmp_path), plain.model_name, candidate.version)
    assert (written.member, written.serving_version, written.fraction) == ("group.host.0", plain.version, 0.5)
