"""Completed batches to outputs: the breaker's verdict, then each partition's ready head produced.

A completion fills its records' slots (classified, or failed alone); the reorder buffer
then releases each partition's finished head in consume order, as enriched events or
`inference_failed` dead letters. With review routing on, an event the policy flags is
enriched with the reason and also written to the review topic (same key and headers); its
offset is done once both are acknowledged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
import structlog

from prodcat.consumer.classify.device import Completion
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.breaker import FailureBreaker
from prodcat.consumer.engine.dead_letters import ENRICHED, REVIEW, DeadLetterRouter, Ref
from prodcat.consumer.engine.output import enriched_event
from prodcat.consumer.engine.records import Classified, Encoded, Failed, Outcome, Slot, Valid
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.review import ReviewPolicy
from prodcat.schemas.events import ErrorKind, ReviewReason

log = structlog.get_logger(__name__)


class Completions:
    """Takes the device worker's completions into the reorder buffer."""

    def __init__(self, *, reorder: ReorderBuffer, breaker: FailureBreaker, metrics: Metrics) -> None:
        self._reorder = reorder
        self._breaker = breaker
        self._metrics = metrics

    def complete(self, completion: Completion[Encoded]) -> None:
        batch, failures = completion.batch, completion.failures
        succeeded = len(batch.items) - len(failures)
        if succeeded:
            self._breaker.succeeded()
        if failures:
            self._breaker.failed(
                len(failures),
                others_succeeded=succeeded > 0,
                last_error=_described(next(reversed(failures.values()))),
                what="on the device",
            )
        self._metrics.observe_batch(
            size=len(batch.items),
            real_tokens=batch.real_tokens,
            padded_tokens=batch.padded_tokens,
            inference_s=completion.seconds,
        )
        finished: list[tuple[Slot, Outcome]] = []
        for row, encoded in enumerate(batch.items):
            failure = failures.get(row)
            finished.append(
                (encoded.slot, Classified(completion, row) if failure is None else Failed(failure))
            )
        self._reorder.finish(finished)


@dataclass(frozen=True, slots=True)
class ReviewRouting:
    """Which events are flagged, and the topic their copies go to."""

    policy: ReviewPolicy
    topic: str


class OutputStage:
    """Produces what the reorder buffer releases: enriched events, or dead letters."""

    def __init__(
        self,
        *,
        delivery: Delivery[Ref],
        dead_letters: DeadLetterRouter,
        topic: str,
        metrics: Metrics,
        review: ReviewRouting | None = None,
    ) -> None:
        self._delivery = delivery
        self._dead_letters = dead_letters
        self._topic = topic
        self._metrics = metrics
        self._review = review

    def release(self, ready: list[tuple[Valid, Outcome]]) -> None:
        latencies: list[float] = []
        wall_ms = time.time() * 1000.0
        for valid, outcome in ready:
            record = valid.record
            if isinstance(outcome, Failed):
                error = _described(outcome.error)
                log.warning("title_failed", topic=record.topic, offset=record.offset, error=error[:200])
                self._dead_letters.send(record, ErrorKind.INFERENCE_FAILED, error)
            elif isinstance(outcome, Classified):
                self._enrich(valid, outcome)
                if record.timestamp_ms > 0:
                    latencies.append(max(0.0, wall_ms - record.timestamp_ms) / 1000.0)
        if latencies:
            self._metrics.observe_latency(latencies)

    def _enrich(self, valid: Valid, classified: Classified) -> None:
        record, review = valid.record, self._review
        reason = None if review is None else review.policy.reason(classified.run.scores[classified.row])
        try:
            value = enriched_event(valid, classified, reason)
        # Only a rebuilt document can fail. pydantic-core's nesting limit (about 237 levels) is
        # below orjson's (254) today; this keeps a change in either from wedging a partition.
        except (orjson.JSONEncodeError, orjson.JSONDecodeError) as exc:
            self._dead_letters.send(
                record, ErrorKind.UNSERIALISABLE, f"the enriched event cannot be written: {exc}"
            )
            return
        if reason is not None:
            self._delivery.expect(record.state, record.offset, 2)
        code = self._delivery.send(
            record.state,
            record.offset,
            ENRICHED,
            (record, "enriched"),
            self._topic,
            value,
            record.key,
            record.headers,
        )
        if code is not None:
            if reason is not None:
                # No review copy of an event that is not out: its share of the offset is settled.
                self._delivery.settle(record.state, record.offset)
            self._dead_letters.output_refused(
                record, code, f"the enriched event ({len(value)} bytes) was refused"
            )
        elif review is not None and reason is not None:
            self._send_review_copy(review.topic, valid, classified, reason, value)

    def _send_review_copy(
        self, topic: str, valid: Valid, classified: Classified, reason: ReviewReason, value: bytes
    ) -> None:
        record = valid.record
        run = classified.run
        self._metrics.flagged_for_review(run.batch.model.labels[run.indices[classified.row][0]], reason.value)
        code = self._delivery.send(
            record.state,
            record.offset,
            REVIEW,
            (record, "review"),
            topic,
            value,
            record.key,
            record.headers,
        )
        if code is not None:
            self._dead_letters.output_refused(
                record, code, f"the review copy ({len(value)} bytes) was refused"
            )


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
