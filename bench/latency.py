"""End-to-end latency at a steady arrival rate: the real service, a tiny model, the real broker.

Events are produced at a fixed rate, each carrying its send time; a reader on the output
topic notes when each enriched event arrives. End to end = arrival - send, so it holds
both Kafka hops (input and output), the poll, any batch wait and the forward pass. The
floor it is judged against: one forward pass of one title plus two hops of a record
through the broker, each measured here on its own.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService
from prodcat.errors import DeliveryError
from prodcat.model.runtime import ServingModel

JOIN_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 120.0
FLOOR_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class Latency:
    rate: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def reader(settings: ConsumerSettings, topic: str, partitions: int) -> Consumer:
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            **settings.kafka_consumer,
            "group.id": f"{settings.group_id}.latency-reader",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def paced(
    settings: ConsumerSettings, model: ServingModel, titles: list[str], rate: float, partitions: int
) -> Latency:
    """The service consuming while `titles` are produced at `rate` per second; latencies read back."""
    service = CategorizerService(settings, FixedModel(model))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            service.run(until_records=len(titles))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="latency-service", daemon=True)
    thread.start()
    joined_by = time.monotonic() + JOIN_TIMEOUT_S
    while service.readiness.assigned_partitions == 0 and not failure:
        if time.monotonic() > joined_by:
            raise DeliveryError("the service did not join its group in time")
        time.sleep(0.05)
    out = reader(settings, settings.output_topic, partitions)
    arrivals: list[float] = []
    done = threading.Event()

    def read() -> None:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(arrivals) < len(titles) and time.monotonic() < deadline:
            for message in out.consume(num_messages=100, timeout=0.05):
                if message.error() is None:
                    arrivals.append(time.time() - orjson.loads(message.value() or b"{}")["sent_at"])
        done.set()

    reading = threading.Thread(target=read, name="latency-reader", daemon=True)
    reading.start()
    producer = Producer({**kafka_client_config(settings), "linger.ms": 0})
    started = time.monotonic()
    for n, title in enumerate(titles):
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        event = {"id": f"lat-{n}", "title": title, "sent_at": time.time()}
        producer.produce(settings.input_topic, orjson.dumps(event), f"lat-{n}".encode())
        producer.poll(0)
    producer.flush(30)
    done.wait(READ_TIMEOUT_S)
    thread.join(READ_TIMEOUT_S)
    out.close()
    if failure:
        raise failure[0]
    if len(arrivals) < len(titles):
        raise DeliveryError(f"only {len(arrivals)} of {len(titles)} enriched events arrived")
    return Latency(rate, percentile(arrivals, 0.5) * 1000, percentile(arrivals, 0.99) * 1000)


def forward_pass_ms(model: ServingModel, title: str) -> float:
    """Median time of tokenizing and classifying one title alone."""
    samples = []
    for _ in range(FLOOR_SAMPLES):
        started = time.perf_counter()
        model.infer(model.encode([title]), top_k=3)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def hop_ms(settings: ConsumerSettings, topic: str) -> float:
    """Median time of one record from produce to a reader, one at a time, through the broker."""
    out = reader(settings, topic, 1)
    producer = Producer({**kafka_client_config(settings), "linger.ms": 0})
    samples = []
    try:
        for n in range(FLOOR_SAMPLES):
            started = time.perf_counter()
            producer.produce(topic, b"{}", partition=0)
            producer.flush(10)
            deadline = time.monotonic() + 10
            while not out.consume(num_messages=1, timeout=0.01) and time.monotonic() < deadline:
                pass
            if n:  # the first waits for the reader's first fetch
                samples.append(time.perf_counter() - started)
    finally:
        out.close()
    return statistics.median(samples) * 1000
