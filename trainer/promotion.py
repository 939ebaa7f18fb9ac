"""The promotion gate: whether a candidate proved itself on live traffic, from the consumers'
shadow summaries (see `consumer/shadow.py`), against the operator's thresholds.

Summaries are read from the registry, beside the candidate
(`.shadow/<version>/<member>/summary.json`), rather than from a topic: they are small, each
member replaces its own, the gate needs the latest of each and nothing older, and whoever can
promote already reads the registry. Only
summaries judged against the version CURRENT names count: a candidate must beat what is live
now, not what was live before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import check_name
from prodcat.model.registry import Registry
from prodcat.schemas.shadow import ShadowSummary, summaries_folder, summary_file


@dataclass(frozen=True)
class Thresholds:
    min_agreement: float = 0.0
    """Least share of compared events on which both models give the same label."""
    min_live_accuracy_gain: float = 0.0
    """Least (candidate - serving) accuracy on events whose label arrived; may be negative."""
    min_judged: int = 100
    """Least events with a label that arrived: a gain measured on a handful says nothing."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"--min-agreement must be in [0, 1], got {self.min_agreement}")
        if not -1.0 <= self.min_live_accuracy_gain <= 1.0:
            raise ConfigError(
                f"--min-live-accuracy-gain must be in [-1, 1], got {self.min_live_accuracy_gain}"
            )
        if self.min_judged < 1:
            raise ConfigError(f"--min-judged must be at least 1, got {self.min_judged}")


@dataclass(frozen=True)
class Evidence:
    """The summaries that count, added up over the members that wrote them."""

    members: int = 0
    compared: int = 0
    agreed: int = 0
    judged: int = 0
    serving_correct: int = 0
    candidate_correct: int = 0
    flips: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def serving_accuracy(self) -> float | None:
        return self.serving_correct / self.judged if self.judged else None

    @property
    def candidate_accuracy(self) -> float | None:
        return self.candidate_correct / self.judged if self.judged else None

    @property
    def accuracy_gain(self) -> float | None:
        return (self.candidate_correct - self.serving_correct) / self.judged if self.judged else None


@dataclass(frozen=True)
class Decision:
    candidate: str
    serving: str
    evidence: Evidence
    refusals: list[str]
    """One line per threshold not met; empty when the candidate may be promoted."""
    ignored: int = 0
    """Summaries of this candidate judged against another serving version."""

    @property
    def promote(self) -> bool:
        return not self.refusals


def combine(summaries: Sequence[ShadowSummary]) -> Evidence:
    flips: Counter[tuple[str, str]] = Counter()
    for summary in summaries:
        for flip in summary.flips:
            flips[(flip.serving, flip.candidate)] += flip.count
    return Evidence(
        members=len(summaries),
        compared=sum(s.compared for s in summaries),
        agreed=sum(s.agreed for s in summaries),
        judged=sum(s.live.judged for s in summaries),
        serving_correct=sum(s.live.serving_correct for s in summaries),
        candidate_correct=sum(s.live.candidate_correct for s in summaries),
        flips=flips,
    )


def decide(
    summaries: Sequence[ShadowSummary], *, candidate: str, serving: str, thresholds: Thresholds
) -> Decision:
    """Whether `candidate` may replace `serving`, from every member's summary of the candidate."""
    mine = [s for s in summaries if s.candidate_version == candidate]
    counted = [s for s in mine if s.serving_version == serving]
    evidence = combine(counted)
    refusals: list[str] = []
    if not counted:
        refusals.append(
            f"no shadow summary of {candidate} judged against the serving {serving} "
            f"({len(mine)} against other versions)"
        )
    elif not evidence.compared:
        refusals.append(f"no event was compared yet ({evidence.members} members reporting)")
    else:
        agreement = evidence.agreed / evidence.compared
        if agreement < thresholds.min_agreement:
            refusals.append(
                f"agreement {agreement:.4f} is below --min-agreement {thresholds.min_agreement} "
                f"on {evidence.compared} events"
            )
    if counted and evidence.judged < thresholds.min_judged:
        refusals.append(
            f"{evidence.judged} events judged against arrived labels, fewer than --min-judged "
            f"{thresholds.min_judged}"
        )
    elif counted:
        gain = (evidence.candidate_correct - evidence.serving_correct) / evidence.judged
        if gain < thresholds.min_live_accuracy_gain:
            refusals.append(
                f"live accuracy gain {gain:+.4f} ({evidence.serving_correct / evidence.judged:.4f} -> "
                f"{evidence.candidate_correct / evidence.judged:.4f} on {evidence.judged} events) is "
                f"below --min-live-accuracy-gain {thresholds.min_live_accuracy_gain}"
            )
    return Decision(
        candidate=candidate,
        serving=serving,
        evidence=evidence,
        refusals=refusals,
        ignored=len(mine) - len(counted),
    )


def read_summaries(registry: Registry, model: str, candidate: str) -> list[ShadowSummary]:
    """Every member's latest summary of `candidate`, from the registry on whatever store it is;
    none when no consumer has reported yet."""
    check_name("model name", model)
    check_name("version", candidate)
    summaries = []
    for member in registry.store.children(f"{model}/{summaries_folder(candidate)}"):
        key = f"{model}/{summary_file(candidate, member)}"
        blob = registry.store.get(key)
        if blob is None:
            # A local member folder exists a moment before its first summary is renamed into it.
            continue
        try:
            summaries.append(ShadowSummary.model_validate_json(blob.data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise CheckpointError(
                f"{registry.uri}/{key} is not a shadow summary: {where}: {first['msg']}"
            ) from None
    return summaries
