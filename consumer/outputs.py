"""The bytes of output records: enriched events and dead letters.

An enriched event is the producer's own bytes with the classification spliced in before
the closing brace, so unknown fields, number formats and key order reach subscribers
exactly as produced. A dead letter never outgrows the producer's record limit: when the
original value does not fit, the letter carries its first bytes, its size and its sha256.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from prodcat.consumer.sink import Headers
from prodcat.schemas.events import ErrorKind

if TYPE_CHECKING:
    from prodcat.model.runtime import ServingModel

MAX_ERROR_MESSAGE_CHARS = 2_000
# Room for the letter's own fields and Kafka's per-record framing.
LETTER_OVERHEAD_BYTES = 8_192


def enriched_value(raw: bytes, classification: dict[str, Any], *, replaces_field: bool) -> bytes:
    """`raw` (a validated JSON object) with a `classification` member.

    `replaces_field` when the producer already sent a `classification` field: then the
    document is rebuilt so the output has one such member, ours.
    """
    if replaces_field:
        return orjson.dumps({**orjson.loads(raw), "classification": classification})
    body = raw.rstrip()
    return body[:-1] + b',"classification":' + orjson.dumps(classification) + b"}"


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
