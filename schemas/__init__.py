"""Contracts shared by the consumer and the trainer. Imports neither torch nor Kafka."""

from prodcat.schemas.events import (
    MAX_EVENT_BYTES,
    Classification,
    DeadLetterEvent,
    EmbeddingVector,
    EnrichedEvent,
    ErrorKind,
    LabelScore,
    RawEvent,
    ReviewReason,
    Timings,
)
from prodcat.schemas.labels import DEFAULT_CATEGORIES, LabelEvent
from prodcat.schemas.manifest import MANIFEST_FORMAT_VERSION, CheckpointManifest, TrainingRecipe
from prodcat.schemas.shadow import ShadowSummary

__all__ = [
    "DEFAULT_CATEGORIES",
    "MANIFEST_FORMAT_VERSION",
    "MAX_EVENT_BYTES",
    "CheckpointManifest",
    "Classification",
    "DeadLetterEvent",
    "EmbeddingVector",
    "EnrichedEvent",
    "ErrorKind",
    "LabelEvent",
    "LabelScore",
    "RawEvent",
    "ReviewReason",
    "ShadowSummary",
    "Timings",
    "TrainingRecipe",
]
