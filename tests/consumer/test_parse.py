import orjson
import pytest

from prodcat.consumer.parse import Rejection, parse_event
from prodcat.schemas.events import ErrorKind, RawEvent

LIMIT = 1_000_000


def test_a_valid_event_keeps_every_field_it_was_produced_with() -> None:
    value = orjson.dumps({"id": "sku-1", "title": "Red Dress", "shop_rank": 4, "tags": ["a"]})
    parsed = parse_event(value, LIMIT)
    assert isinstance(parsed, RawEvent)
    assert parsed.model_dump(exclude_unset=True) == {
        "id": "sku-1",
        "title": "Red Dress",
        "shop_rank": 4,
        "tags": ["a"],
    }


def test_a_numeric_id_is_accepted_as_text() -> None:
    parsed = parse_event(b'{"id": 42, "title": "Wiper Blade"}', LIMIT)
    assert isinstance(parsed, RawEvent)
    assert parsed.id == "42"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b'{"id": "x", "title": ', ErrorKind.INVALID_JSON),
        (b"\xff\xfe not utf-8", ErrorKind.INVALID_JSON),
        (b'["id", "title"]', ErrorKind.NOT_AN_OBJECT),
        (None, ErrorKind.NOT_AN_OBJECT),
        (b'{"id": "x"}', ErrorKind.SCHEMA_VIOLATION),
        (b'{"title": "no id"}', ErrorKind.SCHEMA_VIOLATION),
        (b'{"id": "x", "title": "   "}', ErrorKind.SCHEMA_VIOLATION),
        (b'{"id": "x", "title": "Bib", "price": -1}', ErrorKind.SCHEMA_VIOLATION),
        (b'{"id": true, "title": "Bib"}', ErrorKind.SCHEMA_VIOLATION),
        # Deeper than the JSON parser's nesting limit: refused as it is read, not later on output.
        (b'{"id": "x", "title": "Bib", "n": ' + b"[" * 300 + b"]" * 300 + b"}", ErrorKind.INVALID_JSON),
    ],
)
def test_a_malformed_event_is_rejected_with_its_kind(value: bytes | None, kind: ErrorKind) -> None:
    parsed = parse_event(value, LIMIT)
    assert isinstance(parsed, Rejection)
    assert parsed.kind == kind


def test_a_schema_violation_names_the_offending_field() -> None:
    parsed = parse_event(b'{"id": "x", "title": "Bib", "price": -1}', LIMIT)
    assert isinstance(parsed, Rejection)
    assert parsed.message.startswith("price:")


def test_an_oversized_value_is_rejected_before_it_is_decoded() -> None:
    parsed = parse_event(b"{" + b" " * 200 + b"}", max_bytes=100)
    assert isinstance(parsed, Rejection)
    assert parsed.kind == ErrorKind.TOO_LARGE
    assert "limit 100" in parsed.message


@pytest.mark.parametrize(
    "value",
    [
        b'{"id": "a", "title": "t", "price": Infinity}',
        b'{"id": "a", "title": "t", "weight": -Infinity}',
        b'{"id": "a", "title": "t", "specs": {"ratio": NaN}}',
        # Valid JSON grammar, but no double holds it: a strict parser refuses it, so must we.
        b'{"id": "a", "title": "t", "price": 1e400}',
        b'{"id": "a", "title": "t", "gtin": 1' + b"0" * 400 + b"}",
    ],
)
def test_what_a_strict_json_parser_refuses_is_invalid_json(value: bytes) -> None:
    parsed = parse_event(value, LIMIT)
    assert isinstance(parsed, Rejection)
    assert parsed.kind == ErrorKind.INVALID_JSON


def test_a_numeric_id_of_any_size_is_kept_as_its_exact_decimal_text() -> None:
    parsed = parse_event(b'{"id": 123456789012345678901234567890, "title": "Bib"}', LIMIT)
    assert isinstance(parsed, RawEvent)
    assert parsed.id == "123456789012345678901234567890"


@pytest.mark.parametrize("number", [b"1e3", b"1000.0", b"1.5", b"-2E2"])
def test_a_fractional_or_exponent_id_is_a_schema_violation(number: bytes) -> None:
    parsed = parse_event(b'{"id": ' + number + b', "title": "Bib"}', LIMIT)
    assert isinstance(parsed, Rejection)
    assert parsed.kind == ErrorKind.SCHEMA_VIOLATION
    assert parsed.message.startswith("id:")


@pytest.mark.parametrize("price", [b'"9.99"', b"true"])
def test_a_price_that_is_not_a_json_number_is_a_schema_violation(price: bytes) -> None:
    # The enriched event carries the producer's bytes: a price accepted as text stays text there.
    parsed = parse_event(b'{"id": "a", "title": "Bib", "price": ' + price + b"}", LIMIT)
    assert isinstance(parsed, Rejection)
    assert parsed.kind == ErrorKind.SCHEMA_VIOLATION and parsed.message.startswith("price:")


def test_a_duplicated_key_takes_its_last_value() -> None:
    parsed = parse_event(b'{"id": "a", "title": "First", "title": "Last"}', LIMIT)
    assert isinstance(parsed, RawEvent)
    assert parsed.title == "Last"
