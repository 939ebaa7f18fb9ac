"""Judging a candidate model on live traffic, beside the serving one, without touching outputs.

A sampled share of batches (`--shadow-fraction`, chosen by batch sequence, so a run is
reproducible) also goes through the candidate on the device worker; the judge compares the
two top-1 verdicts of each event: agreement, a flip matrix (serving label -> candidate
label), and the mean confidence shift. Compared events then wait, in a window of bounded
size, for their true label to arrive on the labels topic; when it does, both models are
scored on it. The oldest waiting event is evicted (and counted) when the window is full,
so memory stays bounded however few labels come back.

Not thread-safe: the engine's Kafka thread owns it, as it owns every other piece of state.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from pydantic import ValidationError

from prodcat.model.checkpoint import check_name
from prodcat.model.registry import Registry
from prodcat.model.store import WriteConflict
from prodcat.schemas.labels import LabelEvent
from prodcat.schemas.shadow import Flip, LiveJudgement, ShadowSummary, summary_file

DEFAULT_WINDOW = 100_000
# Only this member writes its summary's key, so one re-read settles a lost race.
WRITE_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    """A model's top-1 answer for one event."""

    label: str
    confidence: float


def verdicts(
    labels: Sequence[str], indices: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]
) -> list[Verdict]:
    """Each row's top-1 verdict from a model's top-k output (best first, as `Inference` holds it)."""
    return [Verdict(labels[row[0]], row_scores[0]) for row, row_scores in zip(indices, scores, strict=True)]


def sampled(sequence: int, fraction: Fraction) -> bool:
    """Whether batch number `sequence` (0, 1, 2, ...) runs through the candidate.

    Sampled batches are spread evenly: of any n consecutive batches, n x fraction are
    sampled, give or take one (a quarter is every fourth batch).
    """
    return ((sequence + 1) * fraction.numerator) // fraction.denominator > (
        sequence * fraction.numerator
    ) // fraction.denominator


def as_fraction(share: float) -> Fraction:
    """`share` as the exact decimal it was written as (0.1 is 1/10, not the float nearest it)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"the shadow fraction must be in (0, 1], got {share}")
    return Fraction(str(share))


class ShadowJudge:
    def __init__(
        self,
        *,
        model_name: str,
        serving_version: str,
        candidate_version: str,
        labels: Sequence[str],
        member: str,
        fraction: float,
        window: int = DEFAULT_WINDOW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if window < 1:
            raise ValueError(f"the shadow window must hold at least one event, got {window}")
        self.model_name = model_name
        self.serving_version = serving_version
        self.candidate_version = check_name("version", candidate_version)
        self.member = check_name("shadow member", member)
        self._fraction = as_fraction(fraction)
        self._window = window
        self._index = {label: i for i, label in enumerate(labels)}
        self._labels = tuple(labels)
        self._clock = clock
        self._started_at = clock()
        self._batches_seen = 0
        self._batches_sampled = 0
        self._compared = 0
        self._agreed = 0
        self._shift_sum = 0.0
        # (serving label index, candidate label index) -> events; at most labels² entries.
        self._flips: Counter[tuple[int, int]] = Counter()
        # id -> (serving label index, candidate label index), oldest first.
        self._awaiting: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._evicted = 0
        self._judged = 0
        self._serving_correct = 0
        self._candidate_correct = 0
        self._unmatched = 0
        self._unknown = 0
        self._unreadable = 0

    def sample_next_batch(self) -> bool:
        """Called once per batch, in order: whether this one also runs through the candidate."""
        take = sampled(self._batches_seen, self._fraction)
        self._batches_seen += 1
        self._batches_sampled += take
        return take

    def observe(self, ids: Sequence[str], serving: Sequence[Verdict], candidate: Sequence[Verdict]) -> None:
        """Both models' verdicts on the events of one sampled batch, in the same row order."""
        if not len(ids) == len(serving) == len(candidate):
            raise ValueError(
                f"{len(ids)} ids, {len(serving)} serving and {len(candidate)} candidate verdicts"
            )
        for event_id, ours, theirs in zip(ids, serving, candidate, strict=True):
            s, c = self._label_index(ours.label), self._label_index(theirs.label)
            self._compared += 1
            self._shift_sum += theirs.confidence - ours.confidence
            if s == c:
                self._agreed += 1
            else:
                self._flips[(s, c)] += 1
            # A repeated id is judged on its latest verdicts: those are what was served last.
            self._awaiting.pop(event_id, None)
            self._awaiting[event_id] = (s, c)
            if len(self._awaiting) > self._window:
                self._awaiting.popitem(last=False)
                self._evicted += 1

    def label_record(self, value: bytes | None) -> None:
        """A record of the labels topic, as it arrived; one that is not a label event is counted."""
        try:
            event = LabelEvent.model_validate_json(value or b"")
        except ValidationError:
            self._unreadable += 1
            return
        self.label_arrived(event.id, event.label)

    def label_arrived(self, event_id: str, label: str) -> None:
        """A true label from the labels topic; scores both models when `event_id` is waiting."""
        verdicts = self._awaiting.pop(event_id, None)
        if verdicts is None:
            self._unmatched += 1
            return
        truth = self._index.get(label)
        if truth is None:
            # Neither model can give it: it says nothing about which of them is better.
            self._unknown += 1
            return
        serving, candidate = verdicts
        self._judged += 1
        self._serving_correct += serving == truth
        self._candidate_correct += candidate == truth

    @property
    def awaiting(self) -> int:
        return len(self._awaiting)

    def summary(self) -> ShadowSummary:
        labels = self._labels
        return ShadowSummary(
            model_name=self.model_name,
            serving_version=self.serving_version,
            candidate_version=self.candidate_version,
            member=self.member,
            started_at=self._started_at,
            updated_at=self._clock(),
            fraction=float(self._fraction),
            window=self._window,
            batches_seen=self._batches_seen,
            batches_sampled=self._batches_sampled,
            compared=self._compared,
            agreed=self._agreed,
            confidence_shift_sum=self._shift_sum,
            flips=[
                Flip(serving=labels[s], candidate=labels[c], count=n)
                for (s, c), n in sorted(self._flips.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            live=LiveJudgement(
                judged=self._judged,
                serving_correct=self._serving_correct,
                candidate_correct=self._candidate_correct,
                awaiting=len(self._awaiting),
                evicted=self._evicted,
                unmatched_labels=self._unmatched,
                unknown_labels=self._unknown,
                unreadable_labels=self._unreadable,
            ),
        )

    def _label_index(self, label: str) -> int:
        try:
            return self._index[label]
        except KeyError:
            raise ValueError(f"{label!r} is not one of the models' labels") from None


def write_summary(registry: Registry, model: str, summary: ShadowSummary) -> str:
    """Writes the summary into the registry beside the candidate's version folder
    (`<model>/.shadow/<candidate>/<member>/summary.json`) and returns its key.

    Each member replaces only its own summary, whole, with a conditional write on the tag it
    read (create when there is none), so the promotion gate never reads half of one. A lost
    race can only be against this member's own earlier write (a restart of the same member):
    it is read again and written over.
    """
    key = f"{check_name('model name', model)}/{summary_file(summary.candidate_version, summary.member)}"
    data = (summary.model_dump_json(indent=2) + "\n").encode()
    for _ in range(WRITE_ROUNDS):
        try:
            registry.store.put_if(key, data, tag=registry.store.tag(key))
        except WriteConflict:
            continue
        return key
    raise WriteConflict(f"registry {registry.uri}: {key} kept changing while this member wrote it")
