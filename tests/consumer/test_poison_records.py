"""Records that cannot be processed, among good ones on the same partition: each ends as a
dead letter with its reason, the partition moves on, and the good events polled with it go out."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.service import CategorizerService
from prodcat.consumer.sink import DEFAULT_MESSAGE_MAX_BYTES
from prodcat.consumer.source import read_topic
from prodcat.model.loading import load_model
from prodcat.schemas.events import DeadLetterEvent, ErrorKind
from prodcat.scratch import scratch_settings
from tests.schemas.published import assert_published

# One past what the JSON parser nests (pydantic's recursion limit sits below 254).
DEEP_LEVELS = 254
# What splicing the classification adds is a few hundred bytes; this leaves less than that.
ENRICHMENT_ROOM_BYTES = 200
# Above what a dead letter can carry whole: base64 grows it by a third.
LARGE_LETTER_BYTES = 800_000


def padded_event(event_id: str, size: int) -> bytes:
    """A valid event of exactly `size` bytes."""
    head = orjson.dumps({"id": event_id, "title": "Silk Scarf", "notes": ""})
    return head[:-2] + b"x" * (size - len(head)) + b'"}'


def deep_event(event_id: str) -> bytes:
    return (
        b'{"id": "' + event_id.encode() + b'", "title": "Silk Scarf", "deep": '
        + b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS + b"}"
    )  # fmt: skip


POISON = {
    "deep": deep_event("deep"),
    # Valid and within the input limit; only once enriched does it outgrow the producer's limit.
    "grows": padded_event("grows", DEFAULT_MESSAGE_MAX_BYTES - ENRICHMENT_ROOM_BYTES),
    # Broken JSON too big to travel whole inside its dead letter.
    "large": b'{"id": "large", "title": "' + b"y" * LARGE_LETTER_BYTES,
    # Over the input limit: the embedded broker takes records past 1 MB from a producer allowed them.
    "huge": padded_event("huge", DEFAULT_MESSAGE_MAX_BYTES + 100_000),
    # Lenient parsers take it; spliced into an enriched event, strict ones could not read that.
    "infinity": b'{"id": "infinity", "title": "Silk Scarf", "price": Infinity}',
}
GOOD = [f"good-{n}" for n in range(len(POISON) + 1)]


@dataclass(frozen=True)
class Outcome:
    enriched_ids: list[str]
    letters: dict[str, DeadLetterEvent]
    """By the poison record's name."""


@pytest.fixture(scope="module")
def outcome(kafka_bootstrap: str, trained_registry: Path) -> Outcome:
    """One partition: a good event, then each poison record followed by another good one."""
    settings = scratch_settings(
        kafka_bootstrap, "poison", partitions=1, registry=trained_registry, device="cpu"
    )
    client = kafka_client_config(settings)
    producer = Producer({**client, "message.max.bytes": 2 * DEFAULT_MESSAGE_MAX_BYTES})
    values = [orjson.dumps({"id": GOOD[0], "title": "Silk Scarf"})]
    for name, good_id in zip(POISON, GOOD[1:], strict=True):
        values += [POISON[name], orjson.dumps({"id": good_id, "title": "Kids Rain Boots"})]
    for value in values:
        producer.produce(settings.input_topic, value)
    assert producer.flush(30) == 0

    model = load_model(trained_registry, device="cpu", min_agreement=0.9)
    summary = CategorizerService(settings, FixedModel(model)).run(until_records=len(values))
    assert summary.consumed == len(values)

    enriched = read_topic(client, settings.output_topic, expected=len(GOOD))
    dead = read_topic(client, settings.dead_letter_topic, expected=len(POISON))
    assert_published(enriched, dead)
    offsets = {offset: name for offset, name in zip(range(1, len(values), 2), POISON, strict=True)}
    letters = [DeadLetterEvent.model_validate_json(r.value or b"") for r in dead]
    return Outcome(
        enriched_ids=[orjson.loads(r.value or b"")["id"] for r in enriched],
        letters={offsets[letter.source_offset]: letter for letter in letters},
    )


def test_good_events_around_poison_records_are_all_enriched_in_order(outcome: Outcome) -> None:
    assert outcome.enriched_ids == GOOD


def test_each_poison_record_gets_exactly_one_dead_letter(outcome: Outcome) -> None:
    assert sorted(outcome.letters) == sorted(POISON)


def test_json_nested_past_the_parser_limit_is_dead_lettered_as_invalid_json(outcome: Outcome) -> None:
    letter = outcome.letters["deep"]
    assert letter.error_kind == ErrorKind.INVALID_JSON
    assert "recursion limit" in letter.error_message
    assert base64.b64decode(letter.original_value_b64) == POISON["deep"]


def test_an_event_that_outgrows_the_producer_limit_once_enriched_is_dead_lettered(
    outcome: Outcome,
) -> None:
    letter = outcome.letters["grows"]
    assert letter.error_kind == ErrorKind.OUTPUT_TOO_LARGE
    assert len(POISON["grows"]) < DEFAULT_MESSAGE_MAX_BYTES


def test_a_letter_for_a_value_too_large_to_carry_holds_its_start_size_and_sha256(
    outcome: Outcome,
) -> None:
    letter = outcome.letters["large"]
    original = POISON["large"]
    carried = base64.b64decode(letter.original_value_b64)
    assert letter.error_kind == ErrorKind.INVALID_JSON
    assert letter.original_value_truncated
    assert 0 < len(carried) < len(original) and original.startswith(carried)
    assert letter.original_value_bytes == len(original)
    assert letter.original_value_sha256 == hashlib.sha256(original).hexdigest()


def test_a_value_over_the_input_limit_is_dead_lettered_as_too_large(outcome: Outcome) -> None:
    letter = outcome.letters["huge"]
    assert letter.error_kind == ErrorKind.TOO_LARGE
    assert letter.original_value_truncated
    assert letter.original_value_bytes == len(POISON["huge"])


def test_a_non_standard_json_literal_is_dead_lettered_as_invalid_json(outcome: Outcome) -> None:
    assert outcome.letters["infinity"].error_kind == ErrorKind.INVALID_JSON
