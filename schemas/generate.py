"""Writes the JSON Schema files next to this module: `python -m prodcat.schemas.generate`."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from prodcat.schemas.events import DeadLetterEvent, EnrichedEvent, RawEvent
from prodcat.schemas.labels import LabelEvent
from prodcat.schemas.manifest import CheckpointManifest
from prodcat.schemas.shadow import ShadowSummary

SCHEMA_DIR = Path(__file__).resolve().parent
MODELS: dict[str, type[BaseModel]] = {
    "raw_event": RawEvent,
    "enriched_event": EnrichedEvent,
    "dead_letter_event": DeadLetterEvent,
    "checkpoint_manifest": CheckpointManifest,
    "labels_event": LabelEvent,
    "shadow_summary": ShadowSummary,
}


def render(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def main() -> None:
    for name, model in MODELS.items():
        schema_path(name).write_text(render(model))


if __name__ == "__main__":
    main()
