"""`--emit-embeddings`: the device worker asks the model for pooled embeddings only when on,
keeps them aligned with their rows through the halve-and-retry path, and the service puts
each title's on its enriched event."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest

from prodcat.consumer.classify.device import DeviceBatch, DeviceWorker
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.embeddings import decode_embedding
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.source import read_topic
from prodcat.model.loading import load_model
from prodcat.model.runtime import Inference, ServingModel, TorchModel
from prodcat.produce import produce_values
from prodcat.schemas.events import EmbeddingVector
from prodcat.scratch import scratch_settings
from tests.faults import PoisonSensitiveModel, WrappedModel
from tests.schemas.published import assert_published

WAIT_S = 60.0
TITLES = [
    "Silk Scarf",
    "Baby Stroller with Canopy",
    "Stainless Steel Chef Knife 8 inch",
    "Wireless Bluetooth Headphones",
    "Organic Cotton Muslin Swaddle Blanket",
    "Leather Ankle Boots",
]


@pytest.fixture(scope="module")
def plain(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


def pooled(model: ServingModel, title: str) -> np.ndarray:
    """The model's pooled output for one title, run alone."""
    inference = model.infer(model.encode([title]), top_k=1, embeddings=True)
    assert inference.embeddings is not None
    return inference.embeddings[0].float().numpy()


def close_to(wire: object, expected: np.ndarray) -> bool:
    vector = decode_embedding(EmbeddingVector.model_validate(wire))
    # float16 on the wire, and a row padded in a batch differs from one run alone by rounding.
    return vector.shape == expected.shape and bool(np.allclose(vector, expected, rtol=1e-2, atol=1e-2))


def test_embeddings_stay_with_their_rows_when_a_failing_batch_is_halved(plain: TorchModel) -> None:
    model = PoisonSensitiveModel(plain)
    titles = [*TITLES[:3], f"{PoisonSensitiveModel.POISON} poison", *TITLES[3:]]
    rows = model.encode(titles)
    worker: DeviceWorker[int] = DeviceWorker(top_k=1, embeddings=True)
    try:
        worker.submit(DeviceBatch(model, rows, list(range(len(rows))), padded_tokens=0, real_tokens=0))
        (completion,) = worker.collect(WAIT_S)
    finally:
        worker.close(WAIT_S)

    assert set(completion.failures) == {3}
    assert completion.embeddings is not None
    assert completion.embeddings[3] is None
    for row, title in enumerate(titles):
        if row != 3:
            assert close_to(completion.embeddings[row], pooled(plain, title)), title


class AskedFor(WrappedModel):
    """The real model; records whether each pass was asked for embeddings."""

    def __init__(self, real: ServingModel) -> None:
        super().__init__(real)
        self.asked: list[bool] = []

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        self.asked.append(embeddings)
        return self._real.infer(rows, top_k=top_k, embeddings=embeddings)


def test_the_device_worker_asks_for_no_embeddings_unless_told_to(plain: TorchModel) -> None:
    model = AskedFor(plain)
    rows = model.encode(TITLES)
    worker: DeviceWorker[int] = DeviceWorker(top_k=1)
    try:
        worker.submit(DeviceBatch(model, rows, list(range(len(rows))), padded_tokens=0, real_tokens=0))
        (completion,) = worker.collect(WAIT_S)
    finally:
        worker.close(WAIT_S)
    assert model.asked == [False]
    assert completion.embeddings is None


def test_enriched_events_carry_the_pooled_embedding_of_their_title(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    settings = scratch_settings(
        kafka_bootstrap, "embeddings", registry=trained_registry, device="cpu", emit_embeddings=True
    )
    documents = [orjson.dumps({"id": f"m-{n}", "title": title}) for n, title in enumerate(TITLES * 3)]
    produce_values(documents, settings)

    CategorizerService(settings, FixedModel(plain)).run(until_records=len(documents))

    outputs = read_topic(
        kafka_client_config(settings), settings.output_topic, expected=len(documents), timeout_s=WAIT_S
    )
    assert_published(outputs, [])
    assert len(outputs) == len(documents)
    expected = {title: pooled(plain, title) for title in TITLES}
    for record in outputs:
        event = orjson.loads(record.value or b"")
        assert close_to(event["classification"]["embedding"], expected[event["title"]]), event["title"]
