"""Per-event CPU cost of the Kafka thread's steps, each measured alone on the same events.

Each step runs over every event in poll-sized batches, and its time is the calling
thread's CPU time (`time.thread_time`), so librdkafka's own threads and waits on the
broker are not counted: tokenize (the batch call), validate (`parse_event` from the
bytes), output (the classification and the spliced enriched event), produce (the
`produce` calls) and ack (serving the acknowledgement callbacks in `poll`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.outputs import enriched_value
from prodcat.consumer.parse import parse_event
from prodcat.errors import DeliveryError
from prodcat.model.runtime import ServingModel

POLL = 128
ACK_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Costs:
    """Microseconds of Kafka-thread CPU per event, by step."""

    tokenize: float
    validate: float
    output: float
    produce: float
    ack: float


def _cpu_us_per_event(events: int, step: Callable[[], None]) -> float:
    started = time.thread_time()
    step()
    return (time.thread_time() - started) / events * 1e6


def measure(settings: ConsumerSettings, model: ServingModel, values: list[bytes], titles: list[str]) -> Costs:
    n = len(values)
    polls = [slice(start, start + POLL) for start in range(0, n, POLL)]
    classification = {
        "label": model.labels[0],
        "confidence": 0.9,
        "top_k": [{"label": label, "score": 0.1} for label in model.labels[:3]],
        "model_name": model.model_name,
        "model_version": model.version,
        "timings": {"queued_ms": 1.0, "inference_ms": 1.0, "batch_size": 64},
    }

    def tokenize() -> None:
        for part in polls:
            model.encode(titles[part])

    def validate() -> None:
        for value in values:
            parse_event(value, 1_000_000)

    def output() -> None:
        for value in values:
            enriched_value(value, dict(classification), replaces_field=False)

    producer = Producer({**kafka_client_config(settings), "linger.ms": 5})
    acknowledged = 0
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        nonlocal acknowledged
        acknowledged += 1
        if error is not None:
            failures.append(error)

    def produce() -> None:
        for value in values:
            producer.produce(settings.output_topic, value, None, on_delivery=delivered)

    def ack() -> None:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while acknowledged < n and time.monotonic() < deadline:
            producer.poll(0.01)

    costs = Costs(
        tokenize=_cpu_us_per_event(n, tokenize),
        validate=_cpu_us_per_event(n, validate),
        output=_cpu_us_per_event(n, output),
        produce=_cpu_us_per_event(n, produce),
        ack=_cpu_us_per_event(n, ack),
    )
    if failures or acknowledged < n:
        raise DeliveryError(
            f"the cost pass got {acknowledged} of {n} acknowledgements, {len(failures)} failed"
        )
    return costs
