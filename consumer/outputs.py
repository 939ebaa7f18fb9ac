"""The bytes of output records: enriched events and dead letters.

An enriched event is the producer's own bytes with the classification spliced in before
the closing brace, so unknown fields, number formats and key order reach subscribers
exactly as produced. Splicing would break the published schema in three cases, where the
document is rebuilt instead, every number still written as produced: a `classification`
member of the producer's (replaced by ours), an integer `id` (written as its decimal text:
the schema's id is a string), and a key given twice in one object (kept once, with its
last value, as orjson and most parsers read it). A dead letter never outgrows the
producer's record limit: when the original value does not fit, the letter carries its
first bytes, its size and its sha256.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jiter
import orjson

from prodcat.consumer.sink import Headers
from prodcat.schemas.events import ErrorKind

if TYPE_CHECKING:
    from prodcat.model.runtime import ServingModel

MAX_ERROR_MESSAGE_CHARS = 2_000
# Room for the letter's own fields and Kafka's per-record framing.
LETTER_OVERHEAD_BYTES = 8_192


def enriched_value(raw: bytes, classification: dict[str, Any], *, replaces_field: bool) -> bytes:
    """`raw` (a document `parse_event` accepted) with a `classification` member.

    `replaces_field` when the caller knows the producer sent a `classification` field:
    the document is then rebuilt without being looked at again.

    Raises orjson's errors when a rebuilt document cannot be written.
    """
    if replaces_field or not _spliceable(raw):
        return _rebuilt(raw, classification)
    body = raw.rstrip()
    return body[:-1] + b',"classification":' + orjson.dumps(classification) + b"}"


def _spliceable(raw: bytes) -> bool:
    """The producer's bytes plus our member are a valid enriched event with no key twice."""
    try:
        document = jiter.from_json(raw, catch_duplicate_keys=True, cache_mode="keys")
    except ValueError:
        # A duplicated key: accepted documents fail here for no other reason.
        return False
    return type(document.get("id")) is str and "classification" not in document


class _Number:
    """A number as written in the input, so a rebuilt document does not round it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _as_written(number: _Number) -> orjson.Fragment:
    return orjson.Fragment(number.text)


def _rebuilt(raw: bytes, classification: dict[str, Any]) -> bytes:
    # The standard library's parser, for its hooks: every number kept as written, and a
    # repeated key's last value (in its first place), as orjson reads it.
    document = json.loads(raw, parse_int=_Number, parse_float=_Number)
    event_id = document.get("id")
    if isinstance(event_id, _Number):
        # parse_event accepted only an integer here; int() drops a "-" from "-0", as it did.
        document["id"] = str(int(event_id.text))
    document["classification"] = classification
    return orjson.dumps(document, default=_as_written)


def classification(
    model: ServingModel,
    indices: Sequence[int],
    scores: Sequence[float],
    *,
    queued_s: float,
    inference_s: float,
    batch_size: int,
) -> dict[str, Any]:
    """The `classification` member of an enriched event (`schemas.events.Classification`)."""
    labels = model.labels
    return {
        "label": labels[indices[0]],
        "confidence": scores[0],
        "top_k": [{"label": labels[i], "score": s} for i, s in zip(indices, scores, strict=True)],
        "model_name": model.model_name,
        "model_version": model.version,
        "timings": {
            "queued_ms": queued_s * 1000.0,
            "inference_ms": inference_s * 1000.0,
            "batch_size": batch_size,
        },
    }


def headers_size(headers: Headers | None) -> int:
    return sum(len(k) + len(v or b"") for k, v in headers) if headers else 0


def dead_letter(
    *,
    kind: ErrorKind,
    message: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None,
    group: str,
    limit: int,
) -> bytes:
    """The letter for one record, at most `limit` bytes with the record's key and headers beside it.

    With no room at all (`limit` 0, for a record whose key or headers alone do not fit) the
    letter keeps only the original value's size and sha256.
    """
    original = value or b""
    # base64 grows 3 bytes to 4; the key travels twice (record key and letter field).
    room = limit - LETTER_OVERHEAD_BYTES - headers_size(headers) - 3 * len(key or b"")
    carried = max(0, room) * 3 // 4
    letter = {
        "error_kind": kind.value,
        "error_message": message[:MAX_ERROR_MESSAGE_CHARS],
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "original_key_b64": base64.b64encode(key).decode() if key is not None else None,
        "original_value_b64": base64.b64encode(original[:carried]).decode(),
        "original_value_bytes": len(original),
        "original_value_sha256": hashlib.sha256(original).hexdigest(),
        "original_value_truncated": len(original) > carried,
        "failed_at": datetime.now(UTC).isoformat(),
        "consumer_group": group,
    }
    return orjson.dumps(letter)
