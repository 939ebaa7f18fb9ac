"""The service against a real Kafka-protocol broker and a real trained tiny checkpoint."""

from __future__ import annotations

import base64
import math
import re
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from prodcat.consumer.classify.device import DeviceFailure
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.source import Record, read_topic
from prodcat.errors import InferenceUnavailable
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.schemas import DeadLetterEvent, EnrichedEvent
from prodcat.scratch import scratch_settings
from tests.faults import BrokenDeviceModel, FailingModel, PoisonSensitiveModel, UnencodableModel
from tests.schemas.published import assert_published

PARTITIONS = 3


@pytest.fixture(scope="module")
def classifier(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


def settings_factory(bootstrap: str, registry: Path) -> ConsumerSettings:
    return scratch_settings(
        bootstrap, "test", partitions=PARTITIONS, registry=registry, device="cpu", commit_interval_ms=200
    )


def events_factory(count: int, malformed_every: int | None = None) -> tuple[list[bytes], set[str], set[str]]:
    titles = [
        "Womens Leather Ankle Boots Size 7",
        "Pampers Baby Wipes 12 Pack",
        "Sterling Silver Hoop Earrings",
    ]
    values, good, bad = [], set(), set()
    for n in range(count):
        event_id = f"sku-{n:05d}"
        if malformed_every and n % malformed_every == 0:
            # Alternate broken JSON and a schema violation; both keep an id to account for.
            value = f'{{"id": "{event_id}", "title": '.encode() if n % 2 else orjson.dumps({"id": event_id})
            bad.add(event_id)
        else:
            value = orjson.dumps({"id": event_id, "title": titles[n % 3], "shop": "test", "rank": n})
            good.add(event_id)
        values.append(value)
    return values, good, bad


def outputs(
    settings: ConsumerSettings, enriched: int, dead: int, settle_s: float = 0.0
) -> tuple[list[Record], list[Record]]:
    """What the service wrote, each record checked against its published schema."""
    client = kafka_client_config(settings)
    read = (
        read_topic(client, settings.output_topic, expected=enriched, settle_s=settle_s),
        read_topic(client, settings.dead_letter_topic, expected=dead, settle_s=settle_s),
    )
    assert_published(*read)
    return read


def dead_letter_id(record: Record) -> str:
    """The id inside the original bytes: broken JSON reaches the topic without a key."""
    original = base64.b64decode(orjson.loads(record.value or b"")["original_value_b64"])
    found = re.search(rb"sku-\d+", original)
    assert found is not None
    return found.group(0).decode()


def test_every_consumed_event_ends_in_exactly_one_output_topic(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    values, good, bad = events_factory(1000, malformed_every=20)
    assert produce_values(values, settings) == 1000

    summary = CategorizerService(settings, FixedModel(classifier)).run(until_records=1000)

    enriched, dead = outputs(settings, 950, 50, settle_s=1.0)
    assert (summary.consumed, summary.enriched, summary.dead_lettered) == (1000, 950, 50)
    assert len(enriched) == 950 and len(dead) == 50
    enriched_ids = Counter(orjson.loads(r.value or b"")["id"] for r in enriched)
    assert set(enriched_ids) == good and max(enriched_ids.values()) == 1
    assert {dead_letter_id(r) for r in dead} == bad


def test_enriched_events_keep_key_fields_and_validate_against_the_schema(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    values, _good, _bad = events_factory(30)
    produce_values(values, settings)
    CategorizerService(settings, FixedModel(classifier)).run(until_records=30)

    enriched, _ = outputs(settings, 30, 0)
    for record in enriched:
        event = EnrichedEvent.model_validate_json(record.value or b"")
        assert record.key == event.id.encode()
        assert event.model_extra is not None and event.model_extra["shop"] == "test"
        assert event.classification.label in classifier.labels
        assert event.classification.model_version == classifier.version


def test_input_headers_are_propagated_to_the_output(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    producer = Producer(kafka_client_config(settings))
    producer.produce(
        settings.input_topic,
        orjson.dumps({"id": "h-1", "title": "Kids Rain Boots"}),
        b"h-1",
        headers=[("trace-id", b"abc123")],
    )
    assert producer.flush(10) == 0
    CategorizerService(settings, FixedModel(classifier)).run(until_records=1)

    enriched, _ = outputs(settings, 1, 0)
    assert enriched[0].headers == [("trace-id", b"abc123")]


def test_dead_letters_carry_the_original_bytes_and_the_reason(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    broken = b'{"id": "x-1", "title": '
    produce_values([broken], settings)
    CategorizerService(settings, FixedModel(classifier)).run(until_records=1)

    _, dead = outputs(settings, 0, 1)
    letter = DeadLetterEvent.model_validate_json(dead[0].value or b"")
    assert base64.b64decode(letter.original_value_b64) == broken
    assert letter.error_kind == "invalid_json"
    assert (letter.source_topic, letter.source_offset) == (settings.input_topic, 0)
    assert letter.consumer_group == settings.group_id


def test_a_second_consumer_resumes_from_committed_offsets_without_re_emitting(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    # A small window, so the first member stops long before it has polled everything.
    settings = settings_factory(kafka_bootstrap, trained_registry).model_copy(update={"window_size": 32})
    values, good, bad = events_factory(2000, malformed_every=40)
    produce_values(values, settings)

    first = CategorizerService(settings, FixedModel(classifier)).run(until_records=150)
    assert 150 <= first.consumed < 2000
    second = CategorizerService(settings, FixedModel(classifier)).run(until_records=2000 - first.consumed)

    assert first.consumed + second.consumed == 2000
    enriched, dead = outputs(settings, len(good), len(bad), settle_s=2.0)
    enriched_ids = [orjson.loads(r.value or b"")["id"] for r in enriched]
    assert sorted(enriched_ids) == sorted(good)
    assert sorted(dead_letter_id(r) for r in dead) == sorted(bad)


def test_only_the_titles_that_fail_on_their_own_are_dead_lettered(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    poisoned = {"sku-00003", "sku-00017"}
    values = [
        orjson.dumps(
            {"id": f"sku-{n:05d}", "title": ("Silk Scarf " + PoisonSensitiveModel.POISON)
             if f"sku-{n:05d}" in poisoned else "Silk Scarf"}
        )
        for n in range(40)
    ]  # fmt: skip
    produce_values(values, settings)

    summary = CategorizerService(settings, FixedModel(PoisonSensitiveModel(classifier))).run(until_records=40)

    assert (summary.enriched, summary.dead_lettered) == (38, 2)
    _, dead = outputs(settings, 38, 2)
    letters = [DeadLetterEvent.model_validate_json(r.value or b"") for r in dead]
    assert {dead_letter_id(r) for r in dead} == poisoned
    assert {letter.error_kind for letter in letters} == {"inference_failed"}


def test_a_model_that_fails_on_everything_stops_the_service_instead_of_dead_lettering_the_stream(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry).model_copy(
        update={"max_failed_in_a_row": 1}
    )
    values, good, _bad = events_factory(40)
    produce_values(values, settings)

    with pytest.raises(InferenceUnavailable, match="the model or its device is broken"):
        CategorizerService(settings, FixedModel(FailingModel(classifier))).run(until_records=40)

    assert_a_healthy_restart_gets_every_event(settings, classifier, good)


def test_a_tokenizer_that_rejects_everything_stops_the_service_instead_of_dead_lettering_the_stream(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry).model_copy(
        update={"max_failed_in_a_row": 4}
    )
    values, good, _bad = events_factory(40)
    produce_values(values, settings)

    with pytest.raises(InferenceUnavailable, match="failed to tokenize"):
        CategorizerService(settings, FixedModel(UnencodableModel(classifier))).run(until_records=40)

    assert_a_healthy_restart_gets_every_event(settings, classifier, good)


def test_a_device_error_stops_the_service_at_once_without_halving_or_dead_lettering(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    # A breaker far away: only classifying the error can stop the stream being dead-lettered.
    settings = settings_factory(kafka_bootstrap, trained_registry).model_copy(
        update={"max_failed_in_a_row": 1_000_000}
    )
    values, good, _bad = events_factory(40)
    produce_values(values, settings)
    broken = BrokenDeviceModel(classifier)

    with pytest.raises(DeviceFailure, match="CUDA error"):
        CategorizerService(settings, FixedModel(broken)).run(until_records=40)

    assert broken.passes == 1
    assert_a_healthy_restart_gets_every_event(settings, classifier, good)


def assert_a_healthy_restart_gets_every_event(
    settings: ConsumerSettings, classifier: TorchModel, good: set[str]
) -> None:
    """Nothing was dead-lettered or committed: a healthy restart of the group gets every event."""
    summary = CategorizerService(settings, FixedModel(classifier)).run(until_records=len(good))
    enriched, dead = outputs(settings, len(good), 0, settle_s=1.0)
    assert (summary.enriched, summary.dead_lettered) == (len(good), 0)
    assert {orjson.loads(r.value or b"")["id"] for r in enriched} == good
    assert dead == []


def test_the_service_reports_the_partitions_it_was_assigned(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    values, _good, _bad = events_factory(10)
    produce_values(values, settings)
    service = CategorizerService(settings, FixedModel(classifier))
    service.run(until_records=10)

    assert service.metrics.registry.get_sample_value("prodcat_assigned_partitions") == PARTITIONS


def test_an_idle_run_reports_zero_seconds_not_a_negative_duration(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    service = CategorizerService(settings, FixedModel(classifier))
    threading.Timer(0.5, service.stop).start()

    summary = service.run()

    assert (summary.consumed, summary.seconds) == (0, 0.0)
    assert math.copysign(1.0, summary.seconds) == 1.0


def test_events_the_schema_takes_in_another_form_come_out_in_its_own(
    kafka_bootstrap: str, trained_registry: Path, classifier: TorchModel
) -> None:
    settings = settings_factory(kafka_bootstrap, trained_registry)
    values = [
        b'{"id": 123456789012345678901234567890, "title": "Kids Rain Boots"}',
        b'{"id": "twice", "title": "Silk Scarf", "title": "Kids Rain Boots"}',
        b'{"id": "theirs", "title": "Silk Scarf", "classification": "Scarves"}',
    ]
    produce_values(values, settings)
    CategorizerService(settings, FixedModel(classifier)).run(until_records=len(values))

    enriched, _ = outputs(settings, len(values), 0)
    events = {event["id"]: event for event in (orjson.loads(r.value or b"") for r in enriched)}
    assert set(events) == {"123456789012345678901234567890", "twice", "theirs"}
    assert events["twice"]["title"] == "Kids Rain Boots"
