"""Where titles are tokenized: on the tokenizer pool's threads, or on the Kafka thread when asked."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.service import CategorizerService
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from tests.faults import StandInModel

EVENTS = 20


def run_with(kafka_bootstrap: str, tmp_path: Path, threads: int) -> StandInModel:
    settings = scratch_settings(
        kafka_bootstrap, "toks", registry=tmp_path, device="cpu", tokenizer_threads=threads
    )
    produce_values([orjson.dumps({"id": f"t-{n}", "title": f"{n} Scarf"}) for n in range(EVENTS)], settings)
    model = StandInModel()
    summary = CategorizerService(settings, FixedModel(model)).run(until_records=EVENTS)
    assert summary.enriched == EVENTS
    return model


def test_with_tokenizer_threads_titles_are_tokenized_off_the_kafka_thread(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    model = run_with(kafka_bootstrap, tmp_path, threads=2)

    assert model.encoded_on and threading.current_thread().name not in model.encoded_on
    assert all(name.startswith("prodcat-tokenizer") for name in model.encoded_on)


def test_with_no_tokenizer_threads_titles_are_tokenized_on_the_kafka_thread(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    model = run_with(kafka_bootstrap, tmp_path, threads=0)

    assert model.encoded_on == {threading.current_thread().name}
