"""Raw Kafka values to validated events, or a reason they cannot be processed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from prodcat.schemas.events import MAX_EVENT_BYTES, ErrorKind, RawEvent


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    document: dict[str, Any]
    """The event exactly as produced, passed through to the enriched event."""
    event: RawEvent


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


def parse_event(value: bytes | None, max_bytes: int = MAX_EVENT_BYTES) -> ParsedEvent | Rejection:
    if value is None:
        return Rejection(ErrorKind.NOT_AN_OBJECT, "record has no value (tombstone)")
    if len(value) > max_bytes:
        return Rejection(ErrorKind.TOO_LARGE, f"value is {len(value)} bytes, limit {max_bytes}")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection(ErrorKind.INVALID_JSON, f"not valid JSON: {exc}")
    if not isinstance(document, dict):
        return Rejection(ErrorKind.NOT_AN_OBJECT, f"expected a JSON object, got {type(document).__name__}")
    try:
        event = RawEvent.model_validate(document)
    except ValidationError as exc:
        return Rejection(ErrorKind.SCHEMA_VIOLATION, describe_validation_error(exc))
    return ParsedEvent(document=document, event=event)
