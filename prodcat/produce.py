"""Producing raw events from a JSON-lines file, each line exactly as written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.sink import KafkaSink


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

    def ack() -> None:
        nonlocal acknowledged
        acknowledged += 1

    try:
        for value in values:
            sink.produce(settings.input_topic, value, key=event_key(value), headers=None, on_ack=ack)
        sink.flush(timeout_s)
    finally:
        sink.close()
    return acknowledged


def produce_file(path: Path, settings: ConsumerSettings) -> int:
    with path.open("rb") as handle:
        return produce_values((line.rstrip(b"\r\n") for line in handle if line.strip()), settings)
