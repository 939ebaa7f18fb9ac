import base64
import hashlib
import json

import jiter
import orjson
import pytest

from prodcat.consumer.outputs import dead_letter, enriched_value
from prodcat.schemas.events import DeadLetterEvent, ErrorKind

CLASSIFICATION = {"label": "Shoes", "confidence": 0.9}


def letter_for(value: bytes, *, limit: int, key: bytes | None = b"k") -> DeadLetterEvent:
    raw = dead_letter(
        kind=ErrorKind.TOO_LARGE,
        message="too big",
        topic="in",
        partition=0,
        offset=7,
        key=key,
        value=value,
        headers=[("trace", b"1")],
        group="g",
        limit=limit,
    )
    assert len(raw) <= max(limit, 1024)
    return DeadLetterEvent.model_validate_json(raw)


def test_the_enriched_event_is_the_produced_bytes_with_the_classification_added() -> None:
    raw = b'{"id": "1", "title": "Boot", "price": 10.50, "z": [1, 2]}  \n'
    event = orjson.loads(enriched_value(raw, CLASSIFICATION, replaces_field=False))
    assert event == {"id": "1", "title": "Boot", "price": 10.5, "z": [1, 2], "classification": CLASSIFICATION}


def test_a_classification_field_sent_by_the_producer_is_replaced_not_duplicated() -> None:
    raw = b'{"id": "1", "title": "Boot", "classification": "mine"}'
    output = enriched_value(raw, CLASSIFICATION, replaces_field=True)
    assert output.count(b'"classification"') == 1
    assert orjson.loads(output)["classification"] == CLASSIFICATION


def test_a_numeric_id_comes_out_as_its_decimal_text() -> None:
    raw = b'{"id": 123456789012345678901234567890, "title": "Boot"}'
    event = orjson.loads(enriched_value(raw, CLASSIFICATION, replaces_field=False))
    assert event["id"] == "123456789012345678901234567890"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "1", "title": "First", "title": "Boot"}',
        b'{"id": "1", "title": "Boot", "size": {"eu": 40, "eu": 41}}',
    ],
)
def test_a_key_given_twice_comes_out_once_with_its_last_value(raw: bytes) -> None:
    output = enriched_value(raw, CLASSIFICATION, replaces_field=False)
    event = jiter.from_json(output, catch_duplicate_keys=True)
    assert event["title"] == "Boot" and event.get("size", {"eu": 41}) == {"eu": 41}


def test_a_rebuilt_event_keeps_every_number_as_it_was_written() -> None:
    raw = b'{"id": "1", "title": "Boot", "classification": 0, "gtin": 12345678901234567890123, "w": 1E3}'
    output = enriched_value(raw, CLASSIFICATION, replaces_field=True)
    as_written = json.loads(output, parse_int=str, parse_float=str)
    assert (as_written["gtin"], as_written["w"]) == ("12345678901234567890123", "1E3")


def test_a_letter_that_fits_carries_the_whole_original_value() -> None:
    letter = letter_for(b"x" * 1000, limit=1_000_000)
    assert base64.b64decode(letter.original_value_b64) == b"x" * 1000
    assert not letter.original_value_truncated


def test_a_letter_for_a_value_too_large_to_carry_keeps_its_start_size_and_sha256() -> None:
    value = bytes(range(256)) * 4000
    letter = letter_for(value, limit=100_000)
    carried = base64.b64decode(letter.original_value_b64)
    assert letter.original_value_truncated and value.startswith(carried) and 0 < len(carried) < len(value)
    assert letter.original_value_bytes == len(value)
    assert letter.original_value_sha256 == hashlib.sha256(value).hexdigest()


def test_a_bare_letter_keeps_no_original_bytes_but_their_size_and_sha256() -> None:
    letter = letter_for(b"abc", limit=0, key=None)
    assert letter.original_value_b64 == "" and letter.original_value_truncated
    assert letter.original_value_sha256 == hashlib.sha256(b"abc").hexdigest()
