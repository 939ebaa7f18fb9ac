"""librdkafka clients: properties judged before any work, their logs and errors as structured events."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import structlog
from confluent_kafka import Consumer, KafkaError, Producer
from structlog.testing import capture_logs

from prodcat.consumer.client_config import (
    BrokerHealth,
    Throttle,
    group_consumer_config,
    kafka_client_config,
    validate_client_config,
)
from prodcat.consumer.config import ConsumerSettings
from prodcat.errors import ConfigError

INTERVAL_S = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("group", [False, True], ids=["producer", "consumer"])
@pytest.mark.parametrize(("key", "value"), [("no.such.property", "1"), ("linger.ms", "banana")])
def test_a_property_librdkafka_rejects_is_a_config_error_naming_it(group: bool, key: str, value: str) -> None:
    settings = ConsumerSettings(kafka={"acks": "all", key: value})
    config = (
        group_consumer_config(settings, group_id="g", auto_offset_reset="earliest")
        if group
        else kafka_client_config(settings)
    )
    with pytest.raises(ConfigError, match=f"^Kafka property {key}={value}: ") as caught:
        validate_client_config(config)
    assert "\n" not in str(caught.value)


def test_properties_librdkafka_accepts_pass() -> None:
    settings = ConsumerSettings(kafka={"acks": "all", "client.id": "prodcat-test"})
    validate_client_config(group_consumer_config(settings, group_id="g", auto_offset_reset="latest"))


def test_librdkafka_log_lines_become_kafka_log_events(closed_port: int) -> None:
    settings = ConsumerSettings(bootstrap_servers=f"127.0.0.1:{closed_port}")
    producer = Producer(kafka_client_config(settings))
    with capture_logs() as events:
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            producer.poll(0.2)
    producer.flush(0)
    assert events[0]["event"] == "kafka_log"
    assert events[0]["facility"] and events[0]["client"].startswith("rdkafka#producer")


def test_an_unreachable_broker_marks_health_unreachable(closed_port: int) -> None:
    health = BrokerHealth()
    settings = ConsumerSettings(bootstrap_servers=f"127.0.0.1:{closed_port}")
    consumer = Consumer(
        group_consumer_config(settings, group_id="g", auto_offset_reset="earliest", health=health)
    )
    consumer.subscribe(["nowhere"])
    deadline = time.monotonic() + 10
    while health.reachable and time.monotonic() < deadline:
        consumer.poll(0.2)
    consumer.close()
    assert not health.reachable


@pytest.mark.parametrize("code", [KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE])
def test_each_connection_error_means_unreachable(code: int) -> None:
    health = BrokerHealth()
    health.error_cb(KafkaError(code))
    assert not health.reachable


def test_an_error_of_another_kind_leaves_the_broker_reachable() -> None:
    health = BrokerHealth()
    health.error_cb(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert health.reachable


def test_since_is_when_the_broker_became_unreachable() -> None:
    clock = FakeClock()
    health = BrokerHealth(clock=clock)
    clock.now += 5
    health.error_cb(KafkaError(KafkaError._TRANSPORT))
    went_down = clock.now
    clock.now += 5
    health.error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert health.since == went_down


def test_marking_reachable_restores_health_and_restarts_since() -> None:
    clock = FakeClock()
    health = BrokerHealth(clock=clock)
    health.error_cb(KafkaError(KafkaError._TRANSPORT))
    clock.now += 5
    health.mark_reachable()
    assert (health.reachable, health.since) == (True, clock.now)


def test_unreachable_is_logged_once_per_interval_with_the_count_held_back() -> None:
    clock = FakeClock()
    health = BrokerHealth(throttle=Throttle(INTERVAL_S, clock), clock=clock)
    with capture_logs() as events:
        for _ in range(5):
            health.error_cb(KafkaError(KafkaError._TRANSPORT))
        clock.now += INTERVAL_S
        health.error_cb(KafkaError(KafkaError._TRANSPORT))
    unreachable = [e for e in events if e["event"] == "broker_unreachable"]
    assert [e.get("suppressed", 0) for e in unreachable] == [0, 4]


def test_a_throttle_admits_each_key_on_its_own() -> None:
    throttle = Throttle(INTERVAL_S, FakeClock())
    assert [throttle.admit(key) for key in ("a", "b", "a")] == [0, 0, None]
