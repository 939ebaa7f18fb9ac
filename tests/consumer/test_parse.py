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
