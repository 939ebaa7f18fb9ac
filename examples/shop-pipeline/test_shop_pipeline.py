import time
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from prodcat.consumer.config import ConsumerSettings
from prodcat.testing import consumer_config, running_categorizer

PRODUCTS = [
    {"id": "sku-1", "title": "Pampers Baby Wipes 12 Pack", "price": 9.99},
    {"id": "sku-2", "title": "Leather Ankle Boots", "brand": "Acme"},
    {"id": "sku-3", "title": "Road Atlas of Europe 2024 (Spiral-bound)"},
]


def publish(settings: ConsumerSettings, products: list[dict[str, Any]]) -> None:
    """The shop's producer: one JSON event per product, keyed by id."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for product in products:
        producer.produce(settings.input_topic, orjson.dumps(product), key=str(product["id"]))
    producer.flush(30)


def categorized(settings: ConsumerSettings, count: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The shop's subscriber: a group consumer of the enriched topic."""
    consumer = Consumer(consumer_config(settings.bootstrap_servers))
    consumer.subscribe([settings.output_topic])
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(events) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                events.append(orjson.loads(message.value() or b"null"))
    finally:
        consumer.close()
    return events


def test_every_product_comes_back_categorized(prodcat_settings: ConsumerSettings) -> None:
    with running_categorizer(prodcat_settings):
        publish(prodcat_settings, PRODUCTS)
        events = categorized(prodcat_settings, len(PRODUCTS))

    assert sorted(e["id"] for e in events) == sorted(p["id"] for p in PRODUCTS)
    assert all(e["classification"]["label"] for e in events)
