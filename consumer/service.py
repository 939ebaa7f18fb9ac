"""The categorizer engine: poll -> validate -> tokenize -> group by length -> device -> produce -> commit.

Two threads. The Kafka thread owns the consumer, the producer, offsets and every produce
call: it polls, validates each record from its bytes, tokenizes the poll's titles in one
call (exact token counts), groups them by length and hands batches to the device worker
(`classify/device.py`), and turns completed batches into enriched events or dead letters.
The device worker only runs batches. One batch runs while the next waits, so the device
and the Kafka path overlap instead of taking turns.

Every consumed offset ends as exactly one enriched or dead-letter record; the delivery
object (`delivery.py`) commits an offset only once that record and every earlier one of
its partition were acknowledged. Enriched events of one partition are produced in the
order they were consumed, whatever order their batches ran in. A record whose output
cannot be built or is refused by the broker on its own account becomes a dead letter with
the reason, so no record can wedge its partition; only broker-level failures stop the
service, and so does a model that fails on every title, rather than dead-lettering the
stream. A newly promoted checkpoint is swapped in between batches: a batch runs on the
model it was tokenized for, and each event names the version that classified it.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
import structlog
from confluent_kafka import KafkaError, Message

from prodcat.consumer.batcher import Batch, LengthGrouper
from prodcat.consumer.classify.device import Completion, DeviceBatch, DeviceWorker
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.client_config import BrokerHealth, group_consumer_config, kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.health import Readiness
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.offsets import PartitionOffsets, TopicPartitionKey
from prodcat.consumer.outputs import dead_letter, enriched_value
from prodcat.consumer.parse import Rejection, parse_event
from prodcat.consumer.sink import Headers, KafkaSink
from prodcat.consumer.source import KafkaSource
from prodcat.consumer.topics import create_topics, wait_for_topics
from prodcat.errors import BrokerError, ConfigError, DeliveryError, InferenceUnavailable
from prodcat.model.runtime import ServingModel
from prodcat.schemas.events import ErrorKind

log = structlog.get_logger(__name__)

IDLE_POLL_S = 0.1
# While batches are on the device the loop comes round at least this often to collect them.
BUSY_POLL_S = 0.001
LAG_EVERY_S = 5.0
GIL_SWITCH_INTERVAL_S = 0.0002
# Records taken per poll, in batches: small enough that batches reach the device between polls.
POLL_BATCHES = 2
# How often start-up says, in the log, that it is still waiting for its topics.
WAITING_LOG_EVERY_S = 30.0
ENRICHED = "enriched"
# Records polled but not yet acknowledged, in windows: one gathering, one cut, one in flight.
UNACKNOWLEDGED_WINDOWS = 3


class Item:
    """One consumed record, from poll until its output is produced."""

    __slots__ = (
        "accepted_at",
        "failure",
        "headers",
        "ids",
        "indices",
        "key",
        "offset",
        "partition",
        "replaces_field",
        "run",
        "scores",
        "settled",
        "state",
        "timestamp_ms",
        "title",
        "topic",
        "value",
    )

    def __init__(
        self,
        message: Message,
        tp: TopicPartitionKey,
        offset: int,
        state: PartitionOffsets,
        accepted_at: float,
    ) -> None:
        self.topic, self.partition = tp
        self.offset = offset
        self.key = message.key()
        self.value = message.value()
        self.headers: Headers | None = message.headers()  # type: ignore[assignment]
        self.timestamp_ms = message.timestamp()[1]
        self.state = state
        self.accepted_at = accepted_at
        self.replaces_field = False
        self.title = ""
        self.ids: list[int] = []
        # Its output went out another way (a dead letter at re-tokenization): skipped in order.
        self.settled = False
        self.run: Completion[Item] | None = None
        self.indices: list[int] = []
        self.scores: list[float] = []
        self.failure: Exception | None = None


class BatchWorker(Protocol):
    """What the loop asks of whatever runs its batches: `DeviceWorker`, or a stand-in in a benchmark."""

    @property
    def outstanding(self) -> int: ...
    def has_room(self) -> bool: ...
    def submit(self, batch: DeviceBatch[Item]) -> None: ...
    def collect(self, timeout_s: float) -> list[Completion[Item]]: ...
    def close(self) -> None: ...


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


def transactional_id(settings: ConsumerSettings, member_index: int) -> str:
    """Stable across restarts of the same member, so a restarted member fences its zombie."""
    base = settings.transactional_id or f"{settings.group_id}.{socket.gethostname()}"
    return f"{base}.{member_index}"


class CategorizerService:
    def __init__(
        self,
        settings: ConsumerSettings,
        models: ModelSource,
        *,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
        member_index: int = 0,
        clock: Callable[[], float] = time.monotonic,
        worker: BatchWorker | None = None,
    ) -> None:
        """`worker` runs the batches; by default a `DeviceWorker` thread, overlapping the Kafka path."""
        self._settings = settings
        self._models = models
        if settings.max_batch_tokens < self._model.max_length:
            raise ConfigError(
                f"--max-batch-tokens {settings.max_batch_tokens} is below the checkpoint's max length "
                f"{self._model.max_length}: a long title could never be batched"
            )
        self._clock = clock
        self.metrics = metrics or Metrics()
        self.metrics.set_model(name=self._model.model_name, version=self._model.version)
        self.readiness = readiness or Readiness()
        self.broker = BrokerHealth()
        self.readiness.model_loaded = True
        self._joined = False
        self._stop = threading.Event()
        self._failing = False
        self._failed_in_a_row = 0
        self._first_record_at: float | None = None
        self._last_done_at: float | None = None
        self._consumed = 0
        self._reported: Counter[str] = Counter()
        self._next_lag = clock() + LAG_EVERY_S
        self._grouper: LengthGrouper[Item] = LengthGrouper(settings.batch_limits, clock)
        self._max_pending = UNACKNOWLEDGED_WINDOWS * settings.window_size
        self._order: dict[TopicPartitionKey, deque[Item]] = {}
        self._worker: BatchWorker = DeviceWorker(top_k=settings.top_k) if worker is None else worker
        exactly_once = settings.delivery == "exactly-once"
        sink = KafkaSink(
            kafka_client_config(settings, health=self.broker),
            transactional_id=transactional_id(settings, member_index) if exactly_once else None,
            stall_limit_s=settings.health_stall_s,
        )
        self._source = KafkaSource(
            group_consumer_config(
                settings,
                group_id=settings.group_id,
                auto_offset_reset=settings.auto_offset_reset,
                health=self.broker,
            ),
            [settings.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._delivery: Delivery[tuple[Item, str]] = Delivery(
            self._source,
            sink,
            exactly_once=exactly_once,
            commit_interval_s=settings.commit_interval_ms / 1000.0,
            timeout_s=settings.shutdown_timeout_s,
            on_commit=self.metrics.committed,
        )
        self._limit = sink.message_max_bytes

    @property
    def _model(self) -> ServingModel:
        """The model new batches are tokenized for; the source swaps it between batches."""
        return self._models.current

    def stop(self) -> None:
        """Asks the loop to finish what it holds, commit, and return. Safe from signal handlers."""
        self._stop.set()

    def run(self, *, until_records: int | None = None) -> RunSummary:
        """Consumes until stopped, or until `until_records` records are accounted for."""
        log.info(
            "consumer_started",
            topic=self._settings.input_topic,
            group=self._settings.group_id,
            model=self._model.model_name,
            version=self._model.version,
            device=self._model.device,
            delivery=self._settings.delivery,
        )
        # The device worker waits on the device with the GIL released and needs it back to hand
        # over its result and take the next batch; at CPython's default 5 ms switch interval a
        # busy Kafka thread would keep a fast device idle for most of that time.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        try:
            self._await_topics()
            self._delivery.start()
            self._source.start()
            while not self._stop.is_set():
                self._round()
                if until_records is not None and self._accounted() >= until_records:
                    break
            self._drain()
            self._delivery.close()
            self._report()
        except BaseException:
            self._failing = True
            self._delivery.abandon()
            raise
        finally:
            self._source.close()
            self._worker.close()
            self._delivery.sink.close(discard=self._failing)
            self._models.close()
        started = self._first_record_at
        summary = RunSummary(
            consumed=self._consumed,
            enriched=self._reported[ENRICHED],
            dead_lettered=sum(n for kind, n in self._reported.items() if kind != ENRICHED),
            seconds=max(0.0, (self._last_done_at or 0.0) - started) if started is not None else 0.0,
        )
        log.info(
            "consumer_stopped",
            **{f.name: getattr(summary, f.name) for f in RunSummary.__dataclass_fields__.values()},
        )
        return summary

    def _await_topics(self) -> None:
        """Until the three topics exist (creating them first when asked to), or until stopped."""
        settings = self._settings
        topics = [settings.input_topic, settings.output_topic, settings.dead_letter_topic]
        config = kafka_client_config(settings, health=self.broker)
        next_log = [0.0]

        def waiting(missing: list[str]) -> None:
            self.readiness.waiting_for = "topics " + ", ".join(missing)
            self.readiness.broker_reachable = self.broker.reachable
            if time.monotonic() >= next_log[0]:
                next_log[0] = time.monotonic() + WAITING_LOG_EVERY_S
                log.warning("waiting_for_topics", missing=missing, create=settings.create_topics)

        while settings.create_topics and not self._stop.is_set():
            try:
                created = create_topics(
                    config,
                    topics,
                    partitions=settings.topic_partitions,
                    replication=settings.topic_replication,
                )
            except BrokerError as exc:
                waiting(topics)
                log.debug("create_topics_failed", error=str(exc))
                self._stop.wait(2.0)
                continue
            if created:
                log.info("topics_created", topics=created, partitions=settings.topic_partitions)
            break
        if wait_for_topics(config, topics, stop=self._stop, on_wait=waiting):
            self.readiness.waiting_for = None
            self.broker.mark_reachable()

    def _accounted(self) -> int:
        return sum(self._delivery.acknowledged.values())

    def _round(self) -> None:
        worker, grouper = self._worker, self._grouper
        room = grouper.room()
        # With no room the only thing to wait for is the device; otherwise wait in poll.
        for completion in worker.collect(IDLE_POLL_S if room == 0 else 0.0):
            self._complete(completion)
        self._dispatch()
        # Records polled and not yet acknowledged are bounded too, so a broker slow to
        # acknowledge slows the poll, and a crash re-emits at most about that many.
        room = min(grouper.room(), self._max_pending - self._delivery.pending())
        if room > 0:
            if worker.outstanding:
                timeout = BUSY_POLL_S
            else:
                due = grouper.seconds_until_due()
                timeout = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due)
            messages = self._source.poll(min(room, self._settings.max_batch_size * POLL_BATCHES), timeout)
            if messages:
                self.broker.mark_reachable()
                self._accept(messages)
                self._dispatch()
        else:
            # No room to poll: wait a moment for acknowledgements (which free room), not in a spin.
            self._delivery.sink.poll(BUSY_POLL_S)
        self._delivery.service()
        self._handle_refusals()
        fresh = self._models.poll()
        if fresh is not None:
            self._swap(fresh)
        self._report()

    def _accept(self, messages: list[Message]) -> None:
        now = time.monotonic()
        if self._first_record_at is None:
            self._first_record_at = now
        self._consumed += len(messages)
        self.metrics.consumed(len(messages))
        delivery, order, limit = self._delivery, self._order, self._limit
        valid: list[Item] = []
        for message in messages:
            # A message without an error always carries its position; the stubs cannot know that.
            tp: TopicPartitionKey = (message.topic(), message.partition())  # type: ignore[assignment]
            offset: int = message.offset()  # type: ignore[assignment]
            item = Item(message, tp, offset, delivery.track(tp, offset), now)
            parsed = parse_event(item.value, limit)
            if isinstance(parsed, Rejection):
                self._dead_letter(item, parsed.kind, parsed.message)
                continue
            extra = parsed.model_extra
            item.replaces_field = extra is not None and "classification" in extra
            item.title = parsed.title
            valid.append(item)
        for item, ids in zip(valid, self._encode(valid), strict=True):
            if ids is None:
                continue
            queue = order.get((item.topic, item.partition))
            if queue is None:
                queue = order[(item.topic, item.partition)] = deque()
            queue.append(item)
            item.ids = ids
            self._grouper.add(item, len(ids))

    def _encode(self, items: Sequence[Item]) -> list[list[int] | None]:
        """Token ids per item's title; a title the tokenizer rejects is dead-lettered alone."""
        if not items:
            return []
        titles = [item.title for item in items]
        try:
            return list(self._model.encode(titles))
        except Exception:
            encoded: list[list[int] | None] = []
            for item, title in zip(items, titles, strict=True):
                try:
                    encoded.append(self._model.encode([title])[0])
                except Exception as exc:
                    self._dead_letter(item, ErrorKind.UNENCODABLE, f"{type(exc).__name__}: {exc}")
                    encoded.append(None)
            return encoded

    def _dispatch(self) -> None:
        worker, grouper = self._worker, self._grouper
        while worker.has_room():
            batch = grouper.next_batch()
            if batch is None:
                return
            self._submit(batch)

    def _submit(self, batch: Batch[Item]) -> None:
        self._worker.submit(
            DeviceBatch(
                model=self._model,
                rows=[item.ids for item in batch.items],
                items=batch.items,
                padded_tokens=batch.padded_tokens,
                real_tokens=batch.real_tokens,
            )
        )

    def _complete(self, completion: Completion[Item]) -> None:
        batch = completion.batch
        failures = completion.failures
        succeeded = len(batch.items) - len(failures)
        if succeeded:
            self._failed_in_a_row = 0
        if failures:
            self._failed_in_a_row += len(failures)
            if not succeeded and self._failed_in_a_row >= self._settings.max_failed_in_a_row:
                last = next(reversed(failures.values()))
                # A model that fails on everything would empty the stream into the dead-letter
                # topic; stopping leaves these offsets uncommitted for a healthy restart.
                raise InferenceUnavailable(
                    f"{self._failed_in_a_row} titles in a row failed on their own, none succeeded; "
                    f"the model or its device is broken (last error: {type(last).__name__}: "
                    f"{str(last)[:200]})"
                )
        self.metrics.observe_batch(
            size=len(batch.items),
            real_tokens=batch.real_tokens,
            padded_tokens=batch.padded_tokens,
            inference_s=completion.seconds,
        )
        partitions = set()
        for row, item in enumerate(batch.items):
            item.run = completion
            item.indices = completion.indices[row]
            item.scores = completion.scores[row]
            item.failure = failures.get(row)
            partitions.add((item.topic, item.partition))
        for tp in partitions:
            self._emit_ready(tp)

    def _emit_ready(self, tp: TopicPartitionKey) -> None:
        """Produces the finished head of a partition's queue, in consume order."""
        queue = self._order.get(tp)
        if not queue:
            return
        latencies: list[float] = []
        wall_ms = time.time() * 1000.0
        while queue and (queue[0].run is not None or queue[0].settled):
            item = queue.popleft()
            if item.settled:
                continue
            if item.failure is not None:
                log.warning(
                    "title_failed",
                    topic=item.topic,
                    offset=item.offset,
                    error=f"{type(item.failure).__name__}: {str(item.failure)[:200]}",
                )
                self._dead_letter(
                    item, ErrorKind.INFERENCE_FAILED, f"{type(item.failure).__name__}: {item.failure}"
                )
                continue
            self._enrich(item)
            if item.timestamp_ms > 0:
                latencies.append(max(0.0, wall_ms - item.timestamp_ms) / 1000.0)
        if latencies:
            self.metrics.observe_latency(latencies)

    def _enrich(self, item: Item) -> None:
        run = item.run
        assert run is not None
        model = run.batch.model
        labels = model.labels
        classification = {
            "label": labels[item.indices[0]],
            "confidence": item.scores[0],
            "top_k": [
                {"label": labels[i], "score": s} for i, s in zip(item.indices, item.scores, strict=True)
            ],
            "model_name": model.model_name,
            "model_version": model.version,
            "timings": {
                "queued_ms": max(0.0, run.started_at - item.accepted_at) * 1000.0,
                "inference_ms": run.seconds * 1000.0,
                "batch_size": len(run.batch.items),
            },
        }
        try:
            value = enriched_value(item.value or b"", classification, replaces_field=item.replaces_field)
        # Only a rebuilt document can fail. pydantic-core's nesting limit (about 237 levels) is
        # below orjson's (254) today; this keeps a change in either from wedging a partition.
        except (orjson.JSONEncodeError, orjson.JSONDecodeError) as exc:
            self._dead_letter(item, ErrorKind.UNSERIALISABLE, f"the enriched event cannot be written: {exc}")
            return
        code = self._delivery.send(
            item.state,
            item.offset,
            ENRICHED,
            (item, ENRICHED),
            self._settings.output_topic,
            value,
            item.key,
            item.headers,
        )
        if code is not None:
            self._output_refused(item, code, f"the enriched event ({len(value)} bytes) was refused")

    def _output_refused(self, item: Item, code: int, reason: str) -> None:
        kind = (
            ErrorKind.OUTPUT_TOO_LARGE if code == KafkaError.MSG_SIZE_TOO_LARGE else ErrorKind.UNDELIVERABLE
        )
        self._dead_letter(item, kind, f"{reason}: {KafkaError(code).str()}")

    def _dead_letter(self, item: Item, kind: ErrorKind, message: str, *, bare: bool = False) -> None:
        log.warning(
            "dead_lettered",
            kind=kind.value,
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            reason=message[:200],
        )
        letter = dead_letter(
            kind=kind,
            message=message,
            topic=item.topic,
            partition=item.partition,
            offset=item.offset,
            key=None if bare else item.key,
            value=item.value,
            headers=None if bare else item.headers,
            group=self._settings.group_id,
            limit=0 if bare else self._limit,
        )
        code = self._delivery.send(
            item.state,
            item.offset,
            kind.value,
            (item, "bare" if bare else "letter"),
            self._settings.dead_letter_topic,
            letter,
            None if bare else item.key,
            None if bare else item.headers,
        )
        if code is not None:
            self._letter_refused(item, kind, message, code, bare=bare)

    def _letter_refused(self, item: Item, kind: ErrorKind, message: str, code: int, *, bare: bool) -> None:
        if bare:
            raise DeliveryError(
                f"even a bare dead letter for {item.topic}[{item.partition}]@{item.offset} was refused: "
                f"{KafkaError(code).str()}",
                code=code,
            )
        # Only the key or headers can have made it too large: send the letter without them.
        self._dead_letter(item, kind, message, bare=True)

    def _handle_refusals(self) -> None:
        for refusal in self._delivery.refusals():
            item, sent = refusal.ref
            if sent == ENRICHED:
                self._output_refused(item, refusal.code, "the broker refused the enriched event")
            else:
                self._letter_refused(
                    item, ErrorKind.UNDELIVERABLE, refusal.reason, refusal.code, bare=sent == "bare"
                )

    def _swap(self, fresh: ServingModel) -> None:
        """Between batches: what has not been handed to the device yet is re-tokenized for `fresh`."""
        self.metrics.set_model(name=fresh.model_name, version=fresh.version)
        waiting = self._grouper.take_all()
        for item, ids in zip(waiting, self._encode(waiting), strict=True):
            if ids is None:
                # Dead-lettered by _encode; its place in the partition's queue must not block.
                item.settled = True
                self._emit_ready((item.topic, item.partition))
                continue
            item.ids = ids
            self._grouper.add(item, len(ids))

    def _drain(self) -> None:
        """Runs and emits everything held: on shutdown and before partitions are revoked."""
        worker = self._worker
        batches = self._grouper.flush()
        while batches or worker.outstanding:
            while batches and worker.has_room():
                self._submit(batches.pop(0))
            for completion in worker.collect(IDLE_POLL_S):
                self._complete(completion)
            self._delivery.sink.poll(0)

    def _on_assign(self, partitions: set[TopicPartitionKey]) -> None:
        self._joined = True
        self.broker.mark_reachable()
        self._partitions_changed()

    def _partitions_changed(self) -> None:
        assigned = len(self._source.assigned)
        self.readiness.assigned_partitions = assigned
        self.readiness.group_idle = self._joined and assigned == 0

    def _on_revoke(self, partitions: set[TopicPartitionKey]) -> None:
        if self._failing:
            # Committing now could record offsets whose output never reached the broker.
            self._delivery.lose(partitions)
            return
        self._drain()
        self._delivery.revoke(partitions)
        self._handle_refusals()
        for tp in partitions:
            self._order.pop(tp, None)
        self._partitions_changed()

    def _on_lost(self, partitions: set[TopicPartitionKey]) -> None:
        # Their outputs may still be produced (a duplicate the new owner also makes), never committed.
        for tp in partitions:
            self._order.pop(tp, None)
        self._partitions_changed()
        self._delivery.lose(partitions)

    def _report(self) -> None:
        """Metrics that are cheaper once per round than once per record."""
        metrics = self.metrics
        acknowledged = self._delivery.acknowledged
        for kind, total in acknowledged.items():
            new = total - self._reported[kind]
            if new:
                self._reported[kind] = total
                self._last_done_at = time.monotonic()
                if kind == ENRICHED:
                    metrics.enriched(new)
                else:
                    metrics.dead_lettered(kind, new)
        metrics.loop_alive(len(self._source.assigned))
        self.readiness.broker_reachable = self.broker.reachable
        now = self._clock()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            self._update_lag()

    def _update_lag(self) -> None:
        committed = self._delivery.committed_offsets()
        ends = self._source.high_watermarks(self._source.assigned)
        lags = {tp: max(0, end - committed.get(tp, 0)) for tp, end in ends.items()}
        # A broker whose end offsets trail what this member already committed reports wrong
        # watermarks (the embedded broker does); the lag is then published but marked.
        reliable = all(end >= committed.get(tp, 0) for tp, end in ends.items())
        self.metrics.set_lag(lags, reliable=reliable)
