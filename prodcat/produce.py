"""Producing raw events from a JSON-lines file, each line exactly as written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, Message

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.sink import KafkaSink
from prodcat.errors import DeliveryError


def event_key(value: bytes) -> bytes | None:
    """The product id as the key when the line is a JSON object with one; else no key."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and isinstance(document.get("id"), str | int):
        return str(document["id"]).encode()
    return None


def produce_values(values: Iterable[bytes], settings: ConsumerSettings, *, timeout_s: float = 30.0) -> int:
    """Produces each value to the input topic and waits until the broker acknowledged all of them."""
    sink = KafkaSink(kafka_client_config(settings))
    acknowledged = 0
    failure: DeliveryError | None = None

    def delivered(error: KafkaError | None, _message: Message) -> None:
        nonlocal acknowledged, failure
        if error is None:
            acknowledged += 1
        elif failure is None:
            failure = DeliveryError(f"producing to {settings.input_topic} failed: {error.str()}")

    failing = True
    try:
        for number, value in enumerate(values, start=1):
            if sink.produce(settings.input_topic, value, event_key(value), None, delivered) is not None:
                raise DeliveryError(f"event {number} is larger than the producer's message.max.bytes")
        sink.flush(timeout_s)
        failing = False
    finally:
        # After a failure the records still queued are dropped: closing would otherwise wait
        # librdkafka's message timeout (five minutes) for them.
        sink.close(discard=failing)
    if failure is not None:
        raise failure
    return acknowledged


def produce_file(path: Path, settings: ConsumerSettings) -> int:
    with path.open("rb") as handle:
        return produce_values((line.rstrip(b"\r\n") for line in handle if line.strip()), settings)
