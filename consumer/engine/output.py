"""The output builder: a classified record's enriched event, as bytes.

The producer's own bytes with the classification spliced in (`consumer/outputs.py`),
naming the model that ran its batch and the batch's timings; the title's embedding when the
device worker was asked for them (`--emit-embeddings`), and the review flag when flagged.
"""

from __future__ import annotations

from typing import Any

from prodcat.consumer.engine.records import Classified, Valid
from prodcat.consumer.outputs import enriched_value
from prodcat.consumer.review import review_fields
from prodcat.schemas.events import ReviewReason


def classification(
    valid: Valid, classified: Classified, review: ReviewReason | None = None
) -> dict[str, Any]:
    run = classified.run
    model = run.batch.model
    labels = model.labels
    indices, scores = run.indices[classified.row], run.scores[classified.row]
    fields: dict[str, Any] = {
        "label": labels[indices[0]],
        "confidence": scores[0],
        "top_k": [{"label": labels[i], "score": s} for i, s in zip(indices, scores, strict=True)],
        "model_name": model.model_name,
        "model_version": model.version,
        "timings": {
            "queued_ms": max(0.0, run.started_at - valid.record.accepted_at) * 1000.0,
            "inference_ms": run.seconds * 1000.0,
            "batch_size": len(run.batch.items),
        },
    }
    if run.embeddings is not None:
        fields["embedding"] = run.embeddings[classified.row]
    if review is not None:
        fields.update(review_fields(review))
    return fields


def enriched_event(valid: Valid, classified: Classified, review: ReviewReason | None = None) -> bytes:
    """Raises orjson's errors when the document had to be rebuilt and cannot be written."""
    return enriched_value(
        valid.record.value or b"",
        classification(valid, classified, review),
        replaces_field=valid.replaces_field,
    )
