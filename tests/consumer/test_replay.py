"""Dead-letter replay against a real broker: failed events go back to their source topic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.replay import replay_dead_letters
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.source import read_topic
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.schemas.events import ErrorKind
from prodcat.scratch import scratch_settings
from tests.faults import PoisonSensitiveModel

INFERENCE_FAILED = frozenset({ErrorKind.INFERENCE_FAILED})
POISONED = [
    orjson.dumps({"id": f"poison-{n}", "title": "Silk Scarf " + PoisonSensitiveModel.POISON})
    for n in range(2)
]
BROKEN_JSON = [b'{"id": "broken-0", "title": ', b'{"id": "broken-1", "title": ']


@pytest.fixture
def dead_lettered(kafka_bootstrap: str, trained_registry: Path) -> tuple[ConsumerSettings, TorchModel]:
    """A stream whose 2 poisoned titles and 2 broken JSON values were dead-lettered."""
    settings = scratch_settings(kafka_bootstrap, "replay", registry=trained_registry, device="cpu")
    healthy = [orjson.dumps({"id": f"ok-{n}", "title": "Silk Scarf"}) for n in range(16)]
    produce_values([*healthy, *POISONED, *BROKEN_JSON], settings)
    classifier = load_model(trained_registry, device="cpu", min_agreement=0.9)
    summary = CategorizerService(settings, FixedModel(PoisonSensitiveModel(classifier))).run(until_records=20)
    assert (summary.enriched, summary.dead_lettered) == (16, 4)
    return settings, classifier


def test_dead_letters_of_the_chosen_kind_go_back_to_their_source_topic_with_their_keys(
    dead_lettered: tuple[ConsumerSettings, TorchModel],
) -> None:
    settings, _ = dead_lettered

    summary = replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    assert summary.replayed == Counter({"inference_failed": 2})
    assert summary.skipped == Counter({"invalid_json": 2})
    inputs = read_topic(kafka_client_config(settings), settings.input_topic, expected=22)
    sent = Counter((r.key, r.value) for r in inputs)
    assert len(inputs) == 22
    # Each poisoned event is now on the input topic twice: as produced, and as replayed.
    assert [sent[(f"poison-{n}".encode(), POISONED[n])] for n in range(2)] == [2, 2]


def test_a_second_replay_sends_nothing_already_replayed(
    dead_lettered: tuple[ConsumerSettings, TorchModel],
) -> None:
    settings, _ = dead_lettered
    replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    again = replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    assert again.replayed.total() == 0


def test_a_dry_run_counts_and_sends_nothing(dead_lettered: tuple[ConsumerSettings, TorchModel]) -> None:
    settings, _ = dead_lettered

    dry = replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0, dry_run=True)
    real = replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    assert dry.replayed == real.replayed == Counter({"inference_failed": 2})


def test_replayed_events_are_enriched_once_the_model_handles_them(
    dead_lettered: tuple[ConsumerSettings, TorchModel],
) -> None:
    settings, classifier = dead_lettered
    replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    # The same group, now with a model that copes: it picks up just the replayed events.
    summary = CategorizerService(settings, FixedModel(classifier)).run(until_records=2)

    assert (summary.enriched, summary.dead_lettered) == (2, 0)
    enriched = read_topic(kafka_client_config(settings), settings.output_topic, expected=18)
    assert {orjson.loads(r.value or b"")["id"] for r in enriched} >= {"poison-0", "poison-1"}
