"""Raw Kafka values to validated events, or a reason they cannot be processed.

A value is JSON only if a strict parser (orjson) reads it: `Infinity`, `NaN`, a number no
double holds (`1e400`), a lone surrogate escape or bytes that are not UTF-8 are
`invalid_json`, because the enriched event carries the producer's bytes and every
subscriber must be able to read it. Validation then runs straight from the bytes
(pydantic's JSON parser, which keeps integers of any size exact and refuses nesting past
200 levels); a key given twice takes its last value, as in orjson. An integer `id` is
accepted as its decimal text; a fractional or exponent one (`1.5`, `1e3`) is a schema
violation, having no one decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from prodcat.schemas.events import ErrorKind, RawEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: ErrorKind
    message: str


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_event(value: bytes | None, max_bytes: int) -> RawEvent | Rejection:
    if value is None:
        return Rejection(ErrorKind.NOT_AN_OBJECT, "record has no value (tombstone)")
    if len(value) > max_bytes:
        return Rejection(ErrorKind.TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    try:
        # Only a check: orjson reads a typical event in a fraction of the validation's time.
        orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection(ErrorKind.INVALID_JSON, f"not valid JSON: {exc}")
    try:
        return RawEvent.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return Rejection(ErrorKind.INVALID_JSON, f"not valid JSON: {first['msg']}")
        if first["type"] == "model_type" and not first["loc"]:
            return Rejection(ErrorKind.NOT_AN_OBJECT, "expected a JSON object")
        return Rejection(ErrorKind.SCHEMA_VIOLATION, describe_validation_error(exc))
