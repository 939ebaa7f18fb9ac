"""The shadow stage: a candidate model judged on a sampled share of live batches.

On the Kafka thread. When the model source has a candidate (`ModelSource.candidate`) and
`--shadow-fraction` is above 0, each batch handed to the device worker asks the judge
(`consumer/shadow.py`) whether it is sampled; a sampled batch's titles are encoded for the
candidate here and ride with the batch (`DeviceBatch.shadow`), and the device worker runs
the candidate after the serving pass. The completion's serving and candidate verdicts go
to the judge; outputs and offsets never see the candidate's. Labels from `--labels-topic`
(followed from its end, `TopicTail`) are joined to what the judge compared. The judge's
totals go to the metrics at most once a second, and its summary to `on_summary` every
`summary_interval_s` (the reload interval) and when the judge is replaced or closed.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import structlog

from prodcat.consumer.classify.device import Completion, DeviceBatch, ShadowPass
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.engine.records import Encoded
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.shadow import ShadowJudge, verdicts
from prodcat.consumer.source import TopicTail
from prodcat.model.runtime import ServingModel
from prodcat.schemas.shadow import ShadowSummary

log = structlog.get_logger(__name__)

METRICS_EVERY_S = 1.0
LABELS_PER_ROUND = 500


class ShadowStage:
    def __init__(
        self,
        *,
        models: ModelSource,
        fraction: float,
        member: str,
        metrics: Metrics,
        on_summary: Callable[[ShadowSummary], None],
        summary_interval_s: float,
        clock: Callable[[], float],
        labels: TopicTail | None = None,
    ) -> None:
        self._models = models
        self._fraction = fraction
        self._member = member
        self._metrics = metrics
        self._on_summary = on_summary
        self._summary_interval_s = summary_interval_s
        self._clock = clock
        self._labels = labels
        self._judge: ShadowJudge | None = None
        self._next_metrics = 0.0
        self._next_summary = clock() + summary_interval_s

    @property
    def judge(self) -> ShadowJudge | None:
        return self._judge

    def prepare(self, batch: DeviceBatch[Encoded]) -> None:
        """Before the batch is handed over: attaches the candidate's pass when the batch is sampled."""
        candidate = self._models.candidate
        if candidate is None:
            return
        judge = self._judge_for(batch.model, candidate)
        if not judge.sample_next_batch():
            return
        titles = [encoded.slot.valid.title for encoded in batch.items]
        batch.shadow = ShadowPass(candidate, candidate.encode(titles))

    def complete(self, completion: Completion[Encoded]) -> None:
        """The judge observes both models' verdicts on the rows the serving model classified."""
        batch, result, judge = completion.batch, completion.shadow, self._judge
        if result is None or batch.shadow is None or judge is None:
            return
        if (judge.serving_version, judge.candidate_version) != (
            batch.model.version,
            batch.shadow.model.version,
        ):
            return
        rows = [row for row in range(len(batch.items)) if row not in completion.failures]
        judge.observe(
            [_event_id(batch.items[row]) for row in rows],
            verdicts(
                batch.model.labels,
                [completion.indices[row] for row in rows],
                [completion.scores[row] for row in rows],
            ),
            verdicts(
                batch.shadow.model.labels,
                [result.indices[row] for row in rows],
                [result.scores[row] for row in rows],
            ),
        )

    def round(self) -> None:
        """Labels that arrived go to the judge; metrics and summaries when due."""
        judge = self._judge
        if self._labels is not None:
            for record in self._labels.poll(LABELS_PER_ROUND):
                if judge is not None:
                    judge.label_record(record.value)
        if judge is None:
            return
        now = self._clock()
        if now >= self._next_metrics:
            self._next_metrics = now + METRICS_EVERY_S
            self._metrics.observe_shadow(judge.summary())
        if now >= self._next_summary:
            self._next_summary = now + self._summary_interval_s
            self._write(judge)

    def close(self) -> None:
        if self._judge is not None:
            self._metrics.observe_shadow(self._judge.summary())
            self._write(self._judge)

    def _judge_for(self, serving: ServingModel, candidate: ServingModel) -> ShadowJudge:
        judge = self._judge
        if judge is not None and (judge.serving_version, judge.candidate_version) == (
            serving.version,
            candidate.version,
        ):
            return judge
        if judge is not None:
            self._write(judge)
        log.info("shadow_started", serving=serving.version, candidate=candidate.version, member=self._member)
        self._judge = ShadowJudge(
            model_name=serving.model_name,
            serving_version=serving.version,
            candidate_version=candidate.version,
            labels=serving.labels,
            member=self._member,
            fraction=self._fraction,
        )
        return self._judge

    def _write(self, judge: ShadowJudge) -> None:
        summary = judge.summary()
        try:
            self._on_summary(summary)
        except OSError as exc:
            # A summary not written now is written whole at the next interval.
            log.warning("shadow_summary_not_written", candidate=judge.candidate_version, error=str(exc))


def _event_id(encoded: Encoded) -> str:
    """The raw event's id as text (validation guaranteed it is there), read for sampled rows only."""
    event_id = orjson.loads(encoded.slot.valid.record.value or b"")["id"]
    return event_id if isinstance(event_id, str) else str(event_id)
