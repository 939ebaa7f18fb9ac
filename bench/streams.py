"""Timed passes of pre-produced events through Kafka: the real service, or a bare client loop.

Every pass gets fresh topics and a fresh group, its events are produced before it starts,
and it is timed from the first record consumed to the last output acknowledged, so group
joins and producing the input are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from bench.stand_in import InlineWorker
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import group_consumer_config, kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.engine.records import Encoded
from prodcat.consumer.service import CategorizerService
from prodcat.errors import DeliveryError
from prodcat.model.runtime import ServingModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings

PRODUCE_TIMEOUT_S = 120.0
# How long the bare loop waits for anything before it gives up on a broken pass.
IDLE_LIMIT_S = 60.0


@dataclass(frozen=True, slots=True)
class Pass:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def fresh_input(
    bootstrap: str,
    values: list[bytes],
    *,
    partitions: int,
    max_batch_size: int,
    max_wait_ms: float,
    **overrides: Any,
) -> ConsumerSettings:
    """Settings naming fresh topics and a fresh group, with `values` already in the input topic."""
    settings = scratch_settings(
        bootstrap,
        "bench",
        partitions=partitions,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        reload_interval_s=0,
        **overrides,
    )
    produce_values(values, settings, timeout_s=PRODUCE_TIMEOUT_S)
    return settings


def service_pass(settings: ConsumerSettings, model: ServingModel, events: int, *, sequential: bool) -> Pass:
    """The real service over `events` records; `sequential` runs each batch on the Kafka thread."""
    worker: InlineWorker[Encoded] | None = InlineWorker(top_k=settings.top_k) if sequential else None
    summary = CategorizerService(settings, FixedModel(model), worker=worker).run(until_records=events)
    if summary.enriched != events:
        raise DeliveryError(
            f"the benchmark pass enriched {summary.enriched} of {events} events "
            f"({summary.dead_lettered} dead-lettered)"
        )
    return Pass(events, summary.seconds)


def bare_client_pass(settings: ConsumerSettings, events: int) -> Pass:
    """A minimal consume -> produce -> commit loop, as little work per record as the client allows.

    It copies each record's value and key to the output topic and commits what it consumed
    asynchronously after each poll, without waiting for acknowledgements: less than the
    service guarantees, so an upper bound on what a Python consumer does on this machine.
    """
    consumer = Consumer(
        {
            **group_consumer_config(settings, group_id=settings.group_id, auto_offset_reset="earliest"),
            "enable.auto.commit": False,
        }
    )
    producer = Producer({**kafka_client_config(settings), "linger.ms": 5})
    acknowledged = 0
    failure: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        nonlocal acknowledged
        if error is None:
            acknowledged += 1
        else:
            failure.append(error)

    consumer.subscribe([settings.input_topic])
    started: float | None = None
    last_seen = time.monotonic()
    try:
        while acknowledged < events:
            if failure:
                raise DeliveryError(f"the bare client's produce failed: {failure[0].str()}")
            messages = consumer.consume(num_messages=512, timeout=0.001 if started else 0.1)
            now = time.monotonic()
            if messages:
                started = started or now
                last_seen = now
                for message in messages:
                    if message.error() is not None:
                        raise DeliveryError(f"the bare client's consume failed: {message.error()}")
                    producer.produce(
                        settings.output_topic, message.value(), message.key(), on_delivery=delivered
                    )
                consumer.commit(asynchronous=True)
            elif now - last_seen > IDLE_LIMIT_S:
                raise DeliveryError(f"the bare client saw nothing for {IDLE_LIMIT_S:.0f}s")
            producer.poll(0)
        finished = time.monotonic()
    finally:
        producer.flush(PRODUCE_TIMEOUT_S)
        consumer.close()
    return Pass(events, finished - (started or finished))
