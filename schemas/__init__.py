"""Contracts shared by the consumer and the trainer. Imports neither torch nor Kafka."""

from prodcat.schemas.events import (
    MAX_EVENT_BYTES,
    Classification,
    DeadLetterEvent,
    EnrichedEvent,
    ErrorKind,
    LabelScore,
    RawEvent,
    Timings,
)
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.schemas.manifest import MANIFEST_FORMAT_VERSION, CheckpointManifest, TrainingRecipe

__all__ = [
    "DEFAULT_CATEGORIES",
    "MANIFEST_FORMAT_VERSION",
    "MAX_EVENT_BYTES",
    "CheckpointManifest",
    "Classification",
    "DeadLetterEvent",
    "EnrichedEvent",
    "ErrorKind",
    "LabelScore",
    "RawEvent",
    "Timings",
    "TrainingRecipe",
]
