"""The output builder: a classified record's enriched event, as bytes.

The producer's own bytes with the classification spliced in (`consumer/outputs.py`),
naming the model that ran its batch and the batch's timings; the title's embedding when the
device worker was asked for them (`--emit-embeddings`), and the review flag when flagged.
"""

from __future__ import annotations

from typing import Any

from prodcat.consumer import outputs
from prodcat.consumer.engine.records import Classified, Valid
from prodcat.consumer.review import review_fields
from prodcat.schemas.events import ReviewReason


def classification(
    valid: Valid, classified: Classified, review: ReviewReason | None = None
) -> dict[str, Any]:
    run = classified.run
    fields = outputs.classification(
        run.batch.model,
        run.indices[classified.row],
        run.scores[classified.row],
        queued_s=max(0.0, run.started_at - valid.record.accepted_at),
        inference_s=run.seconds,
        batch_size=len(run.batch.items),
    )
    if run.embeddings is not None:
        fields["embedding"] = run.embeddings[classified.row]
    if review is not None:
        fields.update(review_fields(review))
    return fields


def enriched_event(valid: Valid, classified: Classified, review: ReviewReason | None = None) -> bytes:
    """Raises orjson's errors when the document had to be rebuilt and cannot be written."""
    return outputs.enriched_value(
        valid.record.value or b"",
        classification(valid, classified, review),
        replaces_field=valid.replaces_field,
    )
