import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from prodcat.schemas import CheckpointManifest, DeadLetterEvent, EnrichedEvent, ErrorKind, RawEvent


def test_raw_event_keeps_unknown_fields() -> None:
    event = RawEvent.model_validate({"id": "1", "title": "Bib", "gtin": "0123"})
    assert event.model_dump()["gtin"] == "0123"


def test_raw_event_title_has_a_size_limit() -> None:
    with pytest.raises(ValidationError, match="title"):
        RawEvent.model_validate({"id": "1", "title": "x" * 2001})


def test_enriched_event_requires_a_classification() -> None:
    with pytest.raises(ValidationError, match="classification"):
        EnrichedEvent.model_validate({"id": "1", "title": "Bib"})


def test_dead_letter_event_accepts_the_documented_error_kinds() -> None:
    letter = DeadLetterEvent(
        error_kind=ErrorKind.INVALID_JSON,
        error_message="not valid JSON",
        source_topic="raw",
        source_partition=0,
        source_offset=7,
        original_key_b64=None,
        original_value_b64="e30=",
        original_value_bytes=2,
        original_value_sha256=hashlib.sha256(b"{}").hexdigest(),
        failed_at=datetime.now(UTC),
        consumer_group="g",
    )
    assert letter.model_dump(mode="json")["error_kind"] == "invalid_json"


def test_manifest_rejects_duplicate_labels() -> None:
    with pytest.raises(ValidationError, match="unique"):
        CheckpointManifest.model_validate(
            {
                "model_name": "m",
                "version": "v1",
                "created_at": "2026-11-22T00:00:00Z",
                "base_model": "b",
                "labels": ["Baby", "Baby"],
                "max_length": 64,
                "training": {
                    "method": "full",
                    "learning_rate": 1e-3,
                    "epochs": 1,
                    "batch_size": 8,
                    "seed": 0,
                    "train_examples": 1,
                    "validation_examples": 1,
                },
                "files": {},
            }
        )
