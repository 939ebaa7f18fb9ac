"""The categorizer loop: poll -> parse -> batch -> classify -> produce -> commit.

Every consumed offset ends as exactly one enriched or dead-letter record, and an offset
is committed only after the broker acknowledged that record and every earlier one of
its partition (at-least-once). A delivery failure stops the loop without committing;
so does a model that fails on every title, rather than dead-lettering the stream. A newly
promoted checkpoint is swapped in between batches (see `classify/reload.py`).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from prodcat.consumer.batcher import Batcher
from prodcat.consumer.classify.reload import ModelReloader
from prodcat.consumer.classify.runtime import Classifier, Prediction
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.offsets import OffsetTracker, TopicPartitionKey
from prodcat.consumer.parse import Rejection, parse_event
from prodcat.consumer.sink import KafkaSink
from prodcat.consumer.source import KafkaSource, Record
from prodcat.errors import InferenceUnavailable
from prodcat.schemas.events import ErrorKind

log = structlog.get_logger(__name__)

MAX_ERROR_MESSAGE_CHARS = 2_000
IDLE_POLL_S = 0.1


@dataclass(slots=True)
class Pending:
    record: Record
    document: dict[str, Any]
    title: str
    consumed_at: float


@dataclass(frozen=True, slots=True)
class RunSummary:
    consumed: int
    enriched: int
    dead_lettered: int
    seconds: float
    """From the first record consumed to the last one committed; group joins are not counted."""

    @property
    def per_second(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0


def kafka_client_config(settings: ConsumerSettings) -> dict[str, object]:
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.kafka}


def group_consumer_config(
    settings: ConsumerSettings, *, group_id: str, auto_offset_reset: str
) -> dict[str, object]:
    """A consumer-group member's configuration: the client settings plus group membership."""
    return {
        **kafka_client_config(settings),
        "group.id": group_id,
        "auto.offset.reset": auto_offset_reset,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
    }


class CategorizerService:
    def __init__(
        self,
        settings: ConsumerSettings,
        classifier: Classifier,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._classifier = classifier
        self._clock = clock
        self.metrics = metrics or Metrics()
        self.metrics.model_version = classifier.version
        self._reloader = (
            ModelReloader(
                settings.registry,
                classifier.checkpoint.directory,
                model_name=settings.model_name,
                device=settings.device,
                interval_s=settings.reload_interval_s,
                min_agreement=settings.min_golden_agreement,
                counts=self.metrics.reloads,
            )
            if settings.reload_interval_s > 0
            else None
        )
        self._stop = threading.Event()
        self._failing = False
        self._failed_in_a_row = 0
        self._acknowledged = 0
        self._first_record_at: float | None = None
        self._last_commit = clock()
        self._offsets = OffsetTracker()
        self._batcher: Batcher[Pending] = Batcher(settings.batch_limits, clock)
        self._sink = KafkaSink(kafka_client_config(settings))
        self._source = KafkaSource(
            group_consumer_config(
                settings, group_id=settings.group_id, auto_offset_reset=settings.auto_offset_reset
            ),
            [settings.input_topic],
            on_revoke=self._on_revoke,
        )

    def stop(self) -> None:
        """Asks the loop to finish what it holds, commit, and return. Safe from signal handlers."""
        self._stop.set()

    def run(self, *, until_records: int | None = None) -> RunSummary:
        """Consumes until stopped, or until `until_records` records are accounted for."""
        log.info(
            "consumer_started",
            topic=self._settings.input_topic,
            group=self._settings.group_id,
            model=self._classifier.model_name,
            version=self._classifier.version,
            device=str(self._classifier.device),
        )
        self._source.start()
        try:
            while not self._stop.is_set():
                self._step()
                if until_records is not None and self._acknowledged >= until_records:
                    break
            self._drain()
        except BaseException:
            self._failing = True
            raise
        finally:
            self._source.close()
            self._sink.close(discard=self._failing)
        summary = RunSummary(
            consumed=self.metrics.consumed,
            enriched=self.metrics.enriched,
            dead_lettered=self.metrics.dead_lettered_total,
            seconds=self._clock() - (self._first_record_at or self._clock()),
        )
        log.info(
            "consumer_stopped",
            **{f.name: getattr(summary, f.name) for f in RunSummary.__dataclass_fields__.values()},
        )
        return summary

    def _step(self) -> None:
        due = self._batcher.seconds_until_due()
        timeout = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due)
        records = self._source.poll(self._settings.max_batch_size, timeout)
        self.metrics.loop_alive(len(self._source.assigned))
        if self._reloader is not None:
            self._reload(self._reloader)
        now = self._clock()
        if records and self._first_record_at is None:
            self._first_record_at = now
        for record in records:
            self._accept(record, now)
        for batch in self._batcher.ready():
            self._classify(batch)
        self._sink.poll(0)
        if now - self._last_commit >= self._settings.commit_interval_ms / 1000.0:
            self._commit()

    def _reload(self, reloader: ModelReloader) -> None:
        fresh = reloader.poll()
        if fresh is None:
            return
        log.info("model_reloaded", previous=self._classifier.version, version=fresh.version)
        # Between batches: what the batcher holds is classified by the new model.
        self._classifier = fresh
        self.metrics.model_version = fresh.version
        self.metrics.reloads["loaded"] += 1

    def _accept(self, record: Record, now: float) -> None:
        self.metrics.consumed += 1
        self._offsets.track(record.tp, record.offset)
        parsed = parse_event(record.value)
        if isinstance(parsed, Rejection):
            self._dead_letter(record, parsed.kind, parsed.message)
            return
        title = parsed.event.title
        self._batcher.add(
            Pending(record, parsed.document, title, now), self._classifier.token_estimate(title)
        )

    def _classify(self, batch: list[Pending]) -> None:
        failed: list[tuple[Pending, Exception]] = []
        succeeded = self._classify_or_split(batch, failed)
        if succeeded:
            self._failed_in_a_row = 0
        if not failed:
            return
        self._failed_in_a_row += len(failed)
        if not succeeded and self._failed_in_a_row >= self._settings.max_failed_in_a_row:
            # A model that fails on everything would empty the stream into the dead-letter
            # topic; stopping leaves these offsets uncommitted for a healthy restart.
            raise InferenceUnavailable(
                f"{self._failed_in_a_row} titles in a row failed on their own, none succeeded; "
                f"the model or its device is broken (last error: {type(failed[-1][1]).__name__}: "
                f"{str(failed[-1][1])[:200]})"
            )
        for pending, exc in failed:
            self._dead_letter(pending.record, ErrorKind.INFERENCE_FAILED, f"{type(exc).__name__}: {exc}")

    def _classify_or_split(self, batch: list[Pending], failed: list[tuple[Pending, Exception]]) -> int:
        """Classifies and emits `batch`; returns how many titles succeeded.

        One bad title (or a batch too big for the device) must not sink its neighbours: a
        failing batch is halved and retried, so only titles that fail on their own land
        in `failed`.
        """
        started = self._clock()
        try:
            predictions = self._classifier.predict([p.title for p in batch], top_k=self._settings.top_k)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("batch_failed_retrying_halves", size=len(batch), error=str(exc)[:200])
                middle = len(batch) // 2
                return self._classify_or_split(batch[:middle], failed) + self._classify_or_split(
                    batch[middle:], failed
                )
            log.warning(
                "title_failed",
                topic=batch[0].record.topic,
                offset=batch[0].record.offset,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
            failed.append((batch[0], exc))
            return 0
        elapsed = self._clock() - started
        self.metrics.batches += 1
        self.metrics.batched_items += len(batch)
        self.metrics.inference_seconds += elapsed
        for pending, prediction in zip(batch, predictions, strict=True):
            self._emit(pending, prediction, started, elapsed, len(batch))
        return len(batch)

    def _emit(
        self, pending: Pending, prediction: Prediction, started: float, elapsed: float, size: int
    ) -> None:
        classification = {
            "label": prediction.label,
            "confidence": prediction.confidence,
            "top_k": [{"label": label, "score": score} for label, score in prediction.top_k],
            "model_name": self._classifier.model_name,
            "model_version": self._classifier.version,
            "timings": {
                "queued_ms": (started - pending.consumed_at) * 1000.0,
                "inference_ms": elapsed * 1000.0,
                "batch_size": size,
            },
        }
        record = pending.record
        self._sink.produce(
            self._settings.output_topic,
            orjson.dumps({**pending.document, "classification": classification}),
            key=record.key,
            headers=record.headers,
            on_ack=self._acknowledger(record.tp, record.offset, None),
        )

    def _dead_letter(self, record: Record, kind: ErrorKind, message: str) -> None:
        letter = {
            "error_kind": kind.value,
            "error_message": message[:MAX_ERROR_MESSAGE_CHARS],
            "source_topic": record.topic,
            "source_partition": record.partition,
            "source_offset": record.offset,
            "original_key_b64": base64.b64encode(record.key).decode() if record.key is not None else None,
            "original_value_b64": base64.b64encode(record.value or b"").decode(),
            "failed_at": datetime.now(UTC).isoformat(),
            "consumer_group": self._settings.group_id,
        }
        log.warning(
            "dead_lettered",
            kind=kind.value,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=message[:200],
        )
        self._sink.produce(
            self._settings.dead_letter_topic,
            orjson.dumps(letter),
            key=record.key,
            headers=record.headers,
            on_ack=self._acknowledger(record.tp, record.offset, kind),
        )

    def _acknowledger(self, tp: TopicPartitionKey, offset: int, dead: ErrorKind | None) -> Callable[[], None]:
        def acknowledged() -> None:
            self._offsets.mark_done(tp, offset)
            self._acknowledged += 1
            if dead is None:
                self.metrics.enriched += 1
            else:
                self.metrics.dead_lettered[dead.value] += 1

        return acknowledged

    def _commit(self, partitions: set[TopicPartitionKey] | None = None) -> None:
        offsets = self._offsets.to_commit(partitions)
        self._source.commit(offsets)
        self._offsets.committed(offsets)
        self._last_commit = self._clock()
        if offsets:
            self.metrics.commits += 1

    def _finish_in_flight(self) -> None:
        for batch in self._batcher.flush():
            self._classify(batch)
        self._sink.flush(self._settings.shutdown_timeout_s)

    def _drain(self) -> None:
        self._finish_in_flight()
        self._commit()

    def _on_revoke(self, partitions: set[TopicPartitionKey]) -> None:
        if self._failing:
            # Committing now could record offsets whose output never reached the broker.
            self._offsets.forget(partitions)
            return
        self._finish_in_flight()
        self._commit(partitions)
        self._offsets.forget(partitions)
