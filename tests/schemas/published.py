"""Whether output bytes keep the published contracts: RFC 8259 JSON as a strict parser reads
it, no key twice in one object, and valid against `schemas/*.schema.json`.

Used on every enriched event and dead letter the Kafka tests read back, and by the fuzz test.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import jiter
import orjson
from jsonschema import Draft202012Validator

from prodcat.consumer.source import Record
from prodcat.schemas.generate import schema_path


@cache
def validator(name: str) -> Draft202012Validator:
    schema = orjson.loads(schema_path(name).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def published(name: str, value: bytes | None) -> dict[str, Any]:
    """The document in `value`, asserted to be a valid `name` (e.g. "enriched_event")."""
    assert value is not None, f"a {name} record has no value"
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"a {name} is not strict JSON ({exc}): {value[:300]!r}") from None
    try:
        jiter.from_json(value, catch_duplicate_keys=True)
    except ValueError as exc:
        raise AssertionError(f"a {name} has a key twice ({exc}): {value[:300]!r}") from None
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(name).iter_errors(document)
    ]
    assert not errors, f"a {name} breaks its schema: {'; '.join(errors)[:1000]}"
    assert isinstance(document, dict)
    return document


def enriched_event(value: bytes | None) -> dict[str, Any]:
    return published("enriched_event", value)


def dead_letter(value: bytes | None) -> dict[str, Any]:
    return published("dead_letter_event", value)


def assert_published(enriched: Iterable[Record], dead: Iterable[Record]) -> None:
    """Every record read back from the output and dead-letter topics keeps its schema."""
    for record in enriched:
        enriched_event(record.value)
    for record in dead:
        dead_letter(record.value)
