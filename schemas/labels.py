"""Label sets and label corrections: the reference six classes, and events of the labels topic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prodcat.schemas.events import MAX_ID_CHARS, MAX_TITLE_CHARS

# The six LSPC V2020 classes the project is built around.
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Automotive",
    "Baby",
    "Books",
    "Clothing",
    "Jewelry",
    "Shoes",
)


class LabelEvent(BaseModel):
    """A label given to a product by someone other than the model: a reviewer, a shop, a rule.

    Keyed by product id on the labels topic; a later event for the same id supersedes an
    earlier one. Unknown fields are kept.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Product id, as on the raw event.")
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS, description="The title the label is for.")
    label: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    source: str = Field(
        min_length=1, max_length=MAX_ID_CHARS, description="Who gave the label (a reviewer, a tool)."
    )
    labelled_at: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_from_number(cls, value: Any) -> Any:
        # As on raw events: numeric ids are accepted and kept as text, so they join.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("title", "label")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value
