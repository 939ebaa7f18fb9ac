"""The serving engine's promises, against the real broker and real tiny checkpoints: output
order per partition, one model per batch across a reload, a clean stop with a batch on the
device, the token budget, and a failing title isolated while other batches are in flight."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, RunSummary
from prodcat.consumer.source import Record, read_topic
from prodcat.model.encode import encode
from prodcat.model.loading import load_model
from prodcat.model.runtime import ServingModel, TorchModel
from prodcat.model.tokenizer import load_tokenizer
from prodcat.produce import produce_values
from prodcat.schemas.events import DeadLetterEvent
from prodcat.scratch import scratch_settings
from prodcat.trainer.train import TrainConfig, train
from tests.faults import PoisonSensitiveModel, RecordingModel, Run

INSTRUCTION = "Instruct: Given a product title, name its category\nQuery: "
WAIT_S = 60.0
# From a couple of tokens to past the checkpoints' max length, so length grouping has work.
TITLES = (
    "Scarf",
    "Kids Rain Boots",
    "Sterling Silver Hoop Earrings with Cubic Zirconia",
    "Womens Leather Ankle Boots Size 7 Black Suede Block Heel Zip Side Winter Fashion Booties "
    "for Women Wide Fit Comfortable Walking Shoes",
    "Pampers Baby Wipes 12 Pack",
    " ".join(["Organic Cotton Muslin Swaddle Blanket"] * 6),
)


@pytest.fixture(scope="module")
def plain(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


@pytest.fixture(scope="module")
def instructed(corpus: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> TorchModel:
    """A checkpoint trained and served with an instruction before every title."""
    result = train(
        TrainConfig(
            data=corpus,
            base_model=str(tiny_base),
            registry=tmp_path_factory.mktemp("instructed"),
            full_finetune=True,
            learning_rate=1e-3,
            instruction=INSTRUCTION,
            progress=False,
        )
    )
    model = load_model(result.checkpoint, device="cpu", min_agreement=0.9)
    assert model.checkpoint.manifest.instruction == INSTRUCTION
    return model


def settings_for(bootstrap: str, registry: Path, **overrides: Any) -> ConsumerSettings:
    return scratch_settings(bootstrap, "engine", registry=registry, device="cpu", **overrides)


def events(count: int, *, keys: int = 6, prefix: str = "e") -> list[bytes]:
    """`count` events over `keys` product ids, titles of very different lengths.

    Each title is unique and starts with its number, which truncation keeps."""
    return [
        orjson.dumps({"id": f"{prefix}-{n % keys}", "seq": n, "title": f"{n} {TITLES[n % len(TITLES)]}"})
        for n in range(count)
    ]


def read_events(settings: ConsumerSettings, topic: str, expected: int, settle_s: float = 0.0) -> list[Record]:
    return read_topic(
        kafka_client_config(settings), topic, expected=expected, timeout_s=WAIT_S, settle_s=settle_s
    )


def seq(record: Record) -> int:
    value: int = orjson.loads(record.value or b"")["seq"]
    return value


def run_in_thread(service: CategorizerService, **kwargs: int) -> tuple[threading.Thread, list[RunSummary]]:
    summaries: list[RunSummary] = []
    worker = threading.Thread(target=lambda: summaries.append(service.run(**kwargs)), daemon=True)
    worker.start()
    return worker, summaries


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


class SwitchingSource:
    """Serves `first` until it has run `after_runs` batches, then hands over `second`, once."""

    def __init__(self, first: RecordingModel, second: RecordingModel, runs: list[Run], after_runs: int):
        self.current: ServingModel = first
        self.candidate: ServingModel | None = None
        self._second = second
        self._runs = runs
        self._after_runs = after_runs

    def poll(self) -> ServingModel | None:
        if self.current is self._second or len(self._runs) < self._after_runs:
            return None
        self.current = self._second
        return self._second

    def close(self) -> None:
        return None


def test_outputs_of_each_input_partition_keep_its_offset_order(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    # Small batches from large windows: length grouping runs short titles ahead of long ones.
    settings = settings_for(kafka_bootstrap, trained_registry, max_batch_size=8, window_size=64)
    values = events(300)
    produce_values(values, settings)
    runs: list[Run] = []

    CategorizerService(settings, FixedModel(RecordingModel(plain, runs))).run(until_records=len(values))

    inputs = read_events(settings, settings.input_topic, len(values))
    where = {seq(r): (r.partition, r.offset) for r in inputs}
    outputs = read_events(settings, settings.output_topic, len(values))
    assert sorted(seq(r) for r in outputs) == sorted(where)
    by_output_partition: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for record in outputs:
        partition, offset = where[seq(record)]
        by_output_partition[record.partition][partition].append(offset)
    for of_input in by_output_partition.values():
        for offsets in of_input.values():
            assert offsets == sorted(offsets)


@pytest.mark.parametrize("tokenizer_threads", [0, 2])
def test_a_reload_never_mixes_models_in_a_batch_and_each_event_names_the_model_that_ran_it(
    tokenizer_threads: int,
    kafka_bootstrap: str,
    trained_registry: Path,
    plain: TorchModel,
    instructed: TorchModel,
) -> None:
    # The two checkpoints tokenize differently (one has an instruction), so a row tokenized
    # for one and run on the other is visible; slow passes keep batches waiting at the swap.
    # The same holds with the tokenizer on threads of its own (test_intake.py pins the race).
    assert plain.version != instructed.version
    settings = settings_for(
        kafka_bootstrap,
        trained_registry,
        max_batch_size=8,
        window_size=32,
        tokenizer_threads=tokenizer_threads,
    )
    values = events(240)
    produce_values(values, settings)
    runs: list[Run] = []
    first = RecordingModel(plain, runs, delay_s=0.02)
    second = RecordingModel(instructed, runs)

    CategorizerService(settings, SwitchingSource(first, second, runs, after_runs=5)).run(
        until_records=len(values)
    )

    ran_on: dict[str, str] = {}
    for run in runs:
        assert all(row in run.model.titles for row in run.rows), (
            "a row ran on a model it was not tokenized for"
        )
        ran_on.update((run.model.titles[row], run.model.version) for row in run.rows)
    assert {run.model for run in runs} == {first, second}
    stamped = {
        event["title"]: event["classification"]["model_version"]
        for event in (orjson.loads(r.value or b"") for r in read_events(settings, settings.output_topic, 240))
    }
    assert stamped == ran_on


def test_stopping_with_a_batch_on_the_device_loses_nothing_and_re_emits_nothing(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    settings = settings_for(kafka_bootstrap, trained_registry, max_batch_size=8, window_size=16)
    values = events(200, keys=200)
    produce_values(values, settings)
    runs: list[Run] = []
    slow = RecordingModel(plain, runs, delay_s=0.2)
    service = CategorizerService(settings, FixedModel(slow))
    worker, summaries = run_in_thread(service)
    try:
        wait_for(lambda: len(runs) >= 3 and slow.on_device.is_set(), "a batch on the device")
        service.stop()
    finally:
        worker.join(WAIT_S)
    (stopped,) = summaries
    assert stopped.consumed < len(values)
    assert stopped.enriched == stopped.consumed

    rest = CategorizerService(settings, FixedModel(plain)).run(until_records=len(values) - stopped.consumed)

    assert rest.consumed == len(values) - stopped.consumed
    # Read a moment past the count, so any duplicate is seen.
    outputs = read_events(settings, settings.output_topic, len(values), settle_s=1.0)
    emitted = Counter(seq(r) for r in outputs)
    assert set(emitted) == set(range(len(values))) and set(emitted.values()) == {1}


@pytest.mark.parametrize("model_name", ["plain", "instructed"])
def test_every_batch_stays_within_the_token_budget_counted_with_the_checkpoint_tokenizer(
    model_name: str, request: pytest.FixtureRequest, kafka_bootstrap: str, trained_registry: Path
) -> None:
    model: TorchModel = request.getfixturevalue(model_name)
    budget = 4 * model.max_length
    settings = settings_for(kafka_bootstrap, trained_registry, max_batch_tokens=budget, window_size=128)
    values = events(120)
    produce_values(values, settings)
    runs: list[Run] = []
    recording = RecordingModel(model, runs)

    CategorizerService(settings, FixedModel(recording)).run(until_records=len(values))

    tokenizer = load_tokenizer(model.checkpoint)
    manifest = model.checkpoint.manifest
    rows = [row for run in runs for row in run.rows]
    titles = [recording.titles[row] for row in rows]
    # A tokenizer that carries the instruction in its template adds it itself.
    as_text = None if manifest.instruction_in_tokenizer else manifest.instruction
    counted = encode(tokenizer, titles, max_length=manifest.max_length, instruction=as_text)
    assert [len(row) for row in rows] == counted["attention_mask"].sum(dim=1).tolist()
    assert len(rows) == len(values)
    assert max(run.padded_tokens for run in runs) <= budget


def test_a_failing_title_among_batches_in_flight_is_dead_lettered_alone(
    kafka_bootstrap: str, trained_registry: Path, plain: TorchModel
) -> None:
    settings = settings_for(kafka_bootstrap, trained_registry, max_batch_size=8, window_size=32)
    poisoned = {17, 18, 90, 151}
    poison = PoisonSensitiveModel.POISON
    values = [
        orjson.dumps({"id": f"p-{n}", "seq": n, "title": f"{n} Silk Scarf" + poison * (n in poisoned)})
        for n in range(160)
    ]
    produce_values(values, settings)
    runs: list[Run] = []
    # Slow passes: while one batch runs, the next waits in the hand-off slot.
    model = RecordingModel(PoisonSensitiveModel(plain), runs, delay_s=0.01)

    summary = CategorizerService(settings, FixedModel(model)).run(until_records=len(values))

    assert (summary.enriched, summary.dead_lettered) == (len(values) - len(poisoned), len(poisoned))
    enriched = read_events(settings, settings.output_topic, len(values) - len(poisoned))
    dead = read_events(settings, settings.dead_letter_topic, len(poisoned))
    assert {seq(r) for r in enriched} == set(range(len(values))) - poisoned
    letters = [DeadLetterEvent.model_validate_json(r.value or b"") for r in dead]
    originals = [orjson.loads(base64.b64decode(letter.original_value_b64)) for letter in letters]
    assert {original["seq"] for original in originals} == poisoned
    assert {letter.error_kind for letter in letters} == {"inference_failed"}
