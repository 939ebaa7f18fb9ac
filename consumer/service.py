"""The categorizer service: the engine's stages (`consumer/engine/`) wired together, and their lifetime.

Two threads. The Kafka thread owns the consumer, the producer, offsets and every produce
call: it polls, validates, tokenizes, groups by length and hands batches to the device
worker (`classify/device.py`), and turns completed batches into enriched events or dead
letters, in consume order per partition. The device worker only runs batches. Every
consumed offset ends as exactly one enriched or dead-letter record (a flagged one also as a
review copy); delivery (`delivery.py`) owns the commit sequence. What the service holds is
created in the order producer -> device worker -> tokenizer pool -> consumer and closed in
reverse on every path; the process-wide GIL switch interval it sets is restored when `run`
returns.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import structlog

from prodcat.consumer.batcher import LengthGrouper
from prodcat.consumer.classify.device import BatchWorker, DeviceWorker
from prodcat.consumer.classify.provider import ModelSource
from prodcat.consumer.client_config import BrokerHealth, group_consumer_config, kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.bootstrap import await_topics
from prodcat.consumer.engine.breaker import FailureBreaker
from prodcat.consumer.engine.dead_letters import REVIEW, DeadLetterRouter, Ref
from prodcat.consumer.engine.intake import Intake
from prodcat.consumer.engine.rebalance import RebalanceHandler
from prodcat.consumer.engine.records import Encoded
from prodcat.consumer.engine.release import Completions, OutputStage, ReviewRouting
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.engine.reporting import Reporter, RunSummary
from prodcat.consumer.engine.scheduler import Scheduler
from prodcat.consumer.engine.shadowing import ShadowStage
from prodcat.consumer.engine.tokenize import InlineTokenizer, PooledTokenizer, TokenizerStage
from prodcat.consumer.health import Readiness
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.review import ReviewPolicy
from prodcat.consumer.shadow import write_summary
from prodcat.consumer.sink import KafkaSink
from prodcat.consumer.source import KafkaSource, TopicTail
from prodcat.consumer.tokenize_pool import default_tokenizer_threads
from prodcat.errors import ConfigError, ProdcatError
from prodcat.model.checkpoint import CURRENT_FILE, MANIFEST_FILE
from prodcat.model.registry import is_uri, open_registry
from prodcat.schemas.shadow import ShadowSummary

__all__ = ["CategorizerService", "RunSummary", "kafka_client_config", "transactional_id"]

log = structlog.get_logger(__name__)

GIL_SWITCH_INTERVAL_S = 0.0002
# How often shadow summaries are written when hot reload (whose interval they follow) is off.
DEFAULT_SUMMARY_INTERVAL_S = 10.0


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
        worker: BatchWorker[Encoded] | None = None,
        on_shadow_summary: Callable[[ShadowSummary], None] | None = None,
    ) -> None:
        """`worker` runs the batches (default: a `DeviceWorker` thread, started by `run`);
        `on_shadow_summary` takes the shadow judge's summaries (default: `summary_writer`)."""
        self._settings = settings
        self._models = models
        model = models.current
        if settings.max_batch_tokens < model.max_length:
            raise ConfigError(
                f"--max-batch-tokens {settings.max_batch_tokens} is below the checkpoint's max length "
                f"{model.max_length}: a long title could never be batched"
            )
        self._member_index = member_index
        self._clock = clock
        self._worker = worker
        self._on_shadow_summary = on_shadow_summary
        self.metrics = metrics or Metrics()
        self.metrics.set_model(name=model.model_name, version=model.version)
        self.readiness = readiness or Readiness()
        self.readiness.model_loaded = True
        self.broker = BrokerHealth()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Asks the loop to finish what it holds, commit, and return. Safe from signal handlers."""
        self._stop.set()

    def run(self, *, until_records: int | None = None) -> RunSummary:
        """Consumes until stopped, or until `until_records` records are accounted for."""
        settings, model = self._settings, self._models.current
        log.info(
            "consumer_started",
            topic=settings.input_topic,
            group=settings.group_id,
            model=model.model_name,
            version=model.version,
            device=model.device,
            delivery=settings.delivery,
        )
        reporter = Reporter(
            metrics=self.metrics, readiness=self.readiness, broker=self.broker, clock=self._clock
        )
        with ExitStack() as stack:
            stack.callback(self._models.close)
            stack.callback(sys.setswitchinterval, sys.getswitchinterval())
            # The device worker waits on the device with the GIL released and needs it back to
            # hand over its result and take the next batch; at CPython's default 5 ms switch
            # interval a busy Kafka thread would keep a fast device idle for most of that time.
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
            await_topics(
                settings,
                kafka_client_config(settings, health=self.broker),
                readiness=self.readiness,
                broker=self.broker,
                stop=self._stop,
            )
            self._serve(stack, reporter, until_records)
        summary = reporter.summary()
        log.info(
            "consumer_stopped",
            **{f.name: getattr(summary, f.name) for f in RunSummary.__dataclass_fields__.values()},
        )
        return summary

    def _serve(self, stack: ExitStack, reporter: Reporter, until_records: int | None) -> None:
        settings = self._settings
        exactly_once = settings.delivery == "exactly-once"
        sink = KafkaSink(
            kafka_client_config(settings, health=self.broker),
            transactional_id=transactional_id(settings, self._member_index) if exactly_once else None,
            stall_limit_s=settings.health_stall_s,
        )
        failing = False
        stack.callback(lambda: sink.close(discard=failing))
        worker: BatchWorker[Encoded] = self._worker or DeviceWorker(
            top_k=settings.top_k, embeddings=settings.emit_embeddings
        )
        stack.callback(worker.close, settings.shutdown_timeout_s)
        threads = (
            default_tokenizer_threads() if settings.tokenizer_threads is None else settings.tokenizer_threads
        )
        tokenizer: TokenizerStage = (
            PooledTokenizer(threads, self._models.current) if threads > 0 else InlineTokenizer()
        )
        stack.callback(tokenizer.close, settings.shutdown_timeout_s)
        # The consumer's callbacks and delivery's refusal handler reach stages built on top of
        # them; each is bound once that stage exists, before the consumer starts.
        handler: list[RebalanceHandler] = []
        source = KafkaSource(
            group_consumer_config(
                settings,
                group_id=settings.group_id,
                auto_offset_reset=settings.auto_offset_reset,
                health=self.broker,
            ),
            [settings.input_topic],
            on_assign=lambda partitions: handler[0].on_assign(partitions),
            on_revoke=lambda partitions: handler[0].on_revoke(partitions),
            on_lost=lambda partitions: handler[0].on_lost(partitions),
        )
        stack.callback(source.close)
        router: list[DeadLetterRouter] = []
        delivery: Delivery[Ref] = Delivery(
            source,
            sink,
            on_refusal=lambda refusal: router[0].settle(refusal),
            exactly_once=exactly_once,
            commit_interval_s=settings.commit_interval_ms / 1000.0,
            timeout_s=settings.shutdown_timeout_s,
            on_commit=self.metrics.committed,
        )
        dead_letters = DeadLetterRouter(
            delivery, topic=settings.dead_letter_topic, group=settings.group_id, limit=sink.message_max_bytes
        )
        router.append(dead_letters)
        breaker = FailureBreaker(settings.max_failed_in_a_row)
        output = OutputStage(
            delivery=delivery,
            dead_letters=dead_letters,
            topic=settings.output_topic,
            metrics=self.metrics,
            review=None
            if settings.review_topic is None
            else ReviewRouting(
                ReviewPolicy(settings.review_threshold, settings.review_margin), settings.review_topic
            ),
        )
        reorder = ReorderBuffer(output.release)
        grouper: LengthGrouper[Encoded] = LengthGrouper(settings.batch_limits, self._clock)
        shadow = self._shadow_stage(stack)
        scheduler = Scheduler(
            source=source,
            delivery=delivery,
            worker=worker,
            grouper=grouper,
            intake=Intake(
                delivery=delivery,
                dead_letters=dead_letters,
                tokenizer=tokenizer,
                breaker=breaker,
                reorder=reorder,
                grouper=grouper,
                models=self._models,
                limit=sink.message_max_bytes,
                clock=time.monotonic,
            ),
            completions=Completions(reorder=reorder, breaker=breaker, metrics=self.metrics),
            models=self._models,
            on_model=self._model_swapped,
            on_records=reporter.consumed,
            max_batch_size=settings.max_batch_size,
            window_size=settings.window_size,
            shadow=shadow,
        )
        handler.append(
            RebalanceHandler(
                delivery=delivery,
                reorder=reorder,
                drain=lambda: scheduler.drain(settings.shutdown_timeout_s),
                assigned=lambda: len(source.assigned),
                readiness=self.readiness,
                broker=self.broker,
            )
        )
        try:
            delivery.start()
            source.start()
            while not self._stop.is_set():
                scheduler.round()
                reporter.report(delivery, source)
                if shadow is not None:
                    shadow.round()
                if until_records is not None and _accounted(delivery) >= until_records:
                    break
            scheduler.drain(settings.shutdown_timeout_s)
            delivery.close()
            reporter.report(delivery, source)
        except BaseException:
            failing = handler[0].failing = True
            delivery.abandon()
            raise

    def _shadow_stage(self, stack: ExitStack) -> ShadowStage | None:
        """The shadow stage when `--shadow-fraction` is above 0 (it idles until there is a candidate)."""
        settings = self._settings
        if settings.shadow_fraction <= 0:
            return None
        labels: TopicTail | None = None
        if settings.labels_topic is not None:
            labels = TopicTail(kafka_client_config(settings, health=self.broker), settings.labels_topic)
            labels.start()
            stack.callback(labels.close)
        shadow = ShadowStage(
            models=self._models,
            fraction=settings.shadow_fraction,
            member=transactional_id(settings, self._member_index),
            metrics=self.metrics,
            on_summary=self._on_shadow_summary or summary_writer(settings),
            summary_interval_s=settings.reload_interval_s or DEFAULT_SUMMARY_INTERVAL_S,
            clock=self._clock,
            labels=labels,
        )
        stack.callback(shadow.close)
        return shadow

    def _model_swapped(self) -> None:
        model = self._models.current
        self.metrics.set_model(name=model.model_name, version=model.version)


def summary_writer(settings: ConsumerSettings) -> Callable[[ShadowSummary], None]:
    """Where shadow summaries go: beside the candidate in the registry the consumer serves
    from, local or on a store, where `registry promote --candidate` reads them. A consumer
    started on a checkpoint folder has no registry (and no candidate): it writes none."""
    location = settings.registry
    path = Path(location)
    if is_uri(location):
        registry = open_registry(location)
    elif (path / CURRENT_FILE).is_file():
        registry = open_registry(path.parent)  # a model's folder: its registry is the one above
    elif (path / MANIFEST_FILE).is_file():
        log.warning(
            "shadow_summaries_not_written", registry=location, why="a checkpoint folder has no registry"
        )
        return lambda summary: None
    else:
        registry = open_registry(path)

    def write(summary: ShadowSummary) -> None:
        try:
            write_summary(registry, summary.model_name, summary)
        except ProdcatError as exc:
            # A store that is down now is written to at the next interval; serving goes on.
            log.warning("shadow_summary_not_written", registry=location, error=str(exc))

    return write


def _accounted(delivery: Delivery[Ref]) -> int:
    """Consumed records with their outcome acknowledged (a review copy is a second output, not one)."""
    return sum(n for kind, n in delivery.acknowledged.items() if kind != REVIEW)
