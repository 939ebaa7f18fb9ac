"""Raw Kafka values to validated events, or a reason they cannot be processed.

Validation runs straight from the bytes (pydantic's JSON parser), once per record: the
enriched output is spliced onto the original bytes, so the document is never rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        return RawEvent.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return Rejection(ErrorKind.INVALID_JSON, f"not valid JSON: {first['msg']}")
        if first["type"] == "model_type" and not first["loc"]:
            return Rejection(ErrorKind.NOT_AN_OBJECT, "expected a JSON object")
        return Rejection(ErrorKind.SCHEMA_VIOLATION, describe_validation_error(exc))
