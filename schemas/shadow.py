"""The shadow summary: what one consumer saw of a candidate model run beside the serving one.

Consumers write it (next to the candidate in the registry); `registry promote --candidate`
reads every member's and decides. It holds counts, not ratios, so the summaries of many
members add up; the ratios are derived (and written too, for people reading the file).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Flip(BaseModel):
    """Events the serving model gave `serving` and the candidate gave `candidate` (they differ)."""

    model_config = ConfigDict(frozen=True)

    serving: str
    candidate: str
    count: int = Field(ge=1)


class LiveJudgement(BaseModel):
    """Both models scored against labels that arrived later on the labels topic, joined by id."""

    model_config = ConfigDict(frozen=True)

    judged: int = Field(default=0, ge=0, description="Compared events whose label arrived.")
    serving_correct: int = Field(default=0, ge=0)
    candidate_correct: int = Field(default=0, ge=0)
    awaiting: int = Field(default=0, ge=0, description="Compared events still waiting for a label.")
    evicted: int = Field(
        default=0, ge=0, description="Compared events dropped, oldest first, to keep the window bounded."
    )
    unmatched_labels: int = Field(
        default=0, ge=0, description="Labels for ids not waiting in the window (not sampled, or evicted)."
    )
    unknown_labels: int = Field(default=0, ge=0, description="Labels outside the models' label set.")
    unreadable_labels: int = Field(
        default=0, ge=0, description="Labels-topic records that are not label events."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def serving_accuracy(self) -> float | None:
        return self.serving_correct / self.judged if self.judged else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def candidate_accuracy(self) -> float | None:
        return self.candidate_correct / self.judged if self.judged else None


class ShadowSummary(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_name: str = Field(min_length=1)
    serving_version: str = Field(min_length=1)
    candidate_version: str = Field(min_length=1)
    member: str = Field(min_length=1, description="The consumer that wrote it (group and member).")
    started_at: datetime
    updated_at: datetime
    fraction: float = Field(gt=0, le=1, description="Share of batches run through both models.")
    window: int = Field(ge=1, description="Most compared events kept waiting for their label.")
    batches_seen: int = Field(ge=0)
    batches_sampled: int = Field(ge=0)
    compared: int = Field(ge=0, description="Events run through both models.")
    agreed: int = Field(ge=0, description="Compared events both models gave the same top-1 label.")
    confidence_shift_sum: float = Field(
        description="Sum over compared events of the candidate's top-1 confidence minus the serving model's."
    )
    flips: list[Flip] = Field(default_factory=list)
    live: LiveJudgement = Field(default_factory=LiveJudgement)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_confidence_shift(self) -> float | None:
        return self.confidence_shift_sum / self.compared if self.compared else None


# Beside the versions, not inside one: a checkpoint is exactly its manifest, and a file added
# to its folder would make it fail verification. Hidden, so never taken for a version. One
# folder per member, so a store that lists folders (not files) can list the members.
SHADOW_DIR = ".shadow"
SUMMARY_FILE = "summary.json"


def summaries_folder(candidate_version: str) -> str:
    """Where, relative to the model's registry folder, the candidate's summaries are kept."""
    return f"{SHADOW_DIR}/{candidate_version}"


def summary_file(candidate_version: str, member: str) -> str:
    """One member's summary, relative to the model's registry folder."""
    return f"{summaries_folder(candidate_version)}/{member}/{SUMMARY_FILE}"
