"""Event contracts on the wire: raw product events in, enriched and dead-letter events out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Kafka's default max.message.bytes is 1 MiB; anything bigger cannot be re-produced anyway.
MAX_EVENT_BYTES = 1_000_000
MAX_ID_CHARS = 256
MAX_TITLE_CHARS = 2_000
MAX_TEXT_CHARS = 20_000


class RawEvent(BaseModel):
    """A product offer as producers write it. Unknown fields are kept and passed through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Product id; the Kafka key.")
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    brand: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    price: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, max_length=8)
    url: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)

    @field_validator("id", mode="before")
    @classmethod
    def _id_from_number(cls, value: Any) -> Any:
        # Many catalogues use numeric ids; accept them but keep the key space textual.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("title")
    @classmethod
    def _title_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is blank")
        return value


class LabelScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    score: float = Field(ge=0.0, le=1.0)


class Timings(BaseModel):
    model_config = ConfigDict(frozen=True)

    queued_ms: float = Field(ge=0.0, description="From consume to the start of the forward pass.")
    inference_ms: float = Field(ge=0.0, description="Forward pass of the micro-batch.")
    batch_size: int = Field(ge=1)


class ReviewReason(StrEnum):
    """Why an event was flagged for a person to check (`--review-threshold`, `--review-margin`)."""

    LOW_CONFIDENCE = "low_confidence"
    SMALL_MARGIN = "small_margin"


class EmbeddingVector(BaseModel):
    """The title's pooled embedding, as the model that classified it computed it."""

    model_config = ConfigDict(frozen=True)

    dtype: Literal["float16"] = "float16"
    dim: int = Field(ge=1)
    b64: str = Field(description="The vector's `dim` IEEE float16 values, little-endian, in base64.")


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    top_k: list[LabelScore]
    model_name: str
    model_version: str
    timings: Timings
    needs_review: bool = Field(
        default=False,
        description="Present, and true, only on events flagged for review; they are also written to "
        "the review topic.",
    )
    review_reason: ReviewReason | None = Field(default=None, description="Present with `needs_review`.")
    embedding: EmbeddingVector | None = Field(
        default=None, description="Present only when the service is asked to emit embeddings."
    )


class EnrichedEvent(RawEvent):
    """The raw event untouched plus the model's verdict."""

    classification: Classification


class ErrorKind(StrEnum):
    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    SCHEMA_VIOLATION = "schema_violation"
    INFERENCE_FAILED = "inference_failed"
    # The title cannot be turned into token ids (e.g. a lone surrogate escape in the JSON).
    UNENCODABLE = "unencodable"
    # The enriched event would be larger than the producer's message.max.bytes.
    OUTPUT_TOO_LARGE = "output_too_large"
    # The enriched event cannot be written as JSON (a document rebuilt past the nesting limit).
    UNSERIALISABLE = "unserialisable"
    # The broker refused this one record for a reason of its own (not the connection).
    UNDELIVERABLE = "undeliverable"


class DeadLetterEvent(BaseModel):
    """What could not be processed, with enough context to replay it."""

    model_config = ConfigDict(frozen=True)

    error_kind: ErrorKind
    error_message: str
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    original_key_b64: str | None
    original_value_b64: str
    original_value_bytes: int = Field(ge=0, description="Size of the original value.")
    original_value_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    original_value_truncated: bool = Field(
        default=False,
        description="The original value did not fit in a dead letter: `original_value_b64` holds its "
        "first bytes only, and the letter cannot be replayed.",
    )
    failed_at: datetime
    consumer_group: str
