"""The checkpoint manifest: the only coupling between the trainer and the consumer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MANIFEST_FORMAT_VERSION: Literal[1] = 1
# A path inside the checkpoint, written with "/": no absolute paths, no drive letters or
# backslashes, and no segment starting with "." (so neither ".." nor hidden files).
RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class TrainingRecipe(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: Literal["lora", "full"]
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    learning_rate: float
    epochs: float
    batch_size: int
    seed: int
    train_examples: int
    validation_examples: int


class CheckpointManifest(BaseModel):
    """Describes a published checkpoint directory; consumers load only what it names."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    format_version: Literal[1] = 1
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    created_at: datetime
    base_model: str
    base_model_revision: str | None = None
    labels: list[str] = Field(min_length=2)
    pooling: Literal["last_token", "mean"] = "last_token"
    padding_side: Literal["left"] = "left"
    max_length: int = Field(ge=4, le=32_768)
    dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    instruction: str | None = Field(
        default=None, description="Prefix prepended to every title before tokenization."
    )
    instruction_in_tokenizer: bool = Field(
        default=False,
        description="The tokenizer's template puts the instruction's tokens before each title, "
        "which is tokenized alone; false: the instruction is prepended as text (older checkpoints).",
    )
    training: TrainingRecipe
    metrics: dict[str, float] = Field(default_factory=dict)
    files: dict[str, Sha256] = Field(
        description="Relative path -> sha256 (lowercase hex) of every file in the checkpoint but this "
        "manifest; paths stay inside the checkpoint.",
        json_schema_extra={"propertyNames": {"pattern": RELATIVE_PATH_PATTERN}},
    )
    library_versions: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels

    @field_validator("files")
    @classmethod
    def _paths_inside_the_checkpoint(cls, files: dict[str, str]) -> dict[str, str]:
        for path in files:
            if not re.fullmatch(RELATIVE_PATH_PATTERN, path):
                raise ValueError(f"{path!r} is not a relative path inside the checkpoint")
        return files
