"""Waiting for and creating topics, against a real Kafka-protocol broker."""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from prodcat.broker import free_port
from prodcat.consumer.topics import create_topics, ensure_topics, wait_for_topics
from prodcat.errors import BrokerError

POLL_S = 0.2
# Only a guard against hanging: a wait that is never satisfied gives up here and fails the test.
GIVE_UP_S = 60.0


def fresh(name: str) -> str:
    return f"topics-{uuid.uuid4().hex[:8]}.{name}"


def client(bootstrap: str) -> dict[str, str | int | float | bool]:
    return {"bootstrap.servers": bootstrap}


def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    known = AdminClient(client(bootstrap)).list_topics(timeout=15).topics
    return {name: len(known[name].partitions) for name in topics if name in known}


def give_up_later(stop: threading.Event) -> threading.Timer:
    timer = threading.Timer(GIVE_UP_S, stop.set)
    timer.daemon = True
    timer.start()
    return timer


def test_waiting_ends_once_another_thread_creates_the_topic(kafka_bootstrap: str) -> None:
    topic = fresh("products.raw")
    stop = threading.Event()
    missing_seen: list[list[str]] = []
    first_wait = threading.Event()

    def on_wait(missing: list[str]) -> None:
        missing_seen.append(missing)
        first_wait.set()

    def create_once_waited() -> None:
        first_wait.wait(GIVE_UP_S)
        create_topics(client(kafka_bootstrap), [topic], partitions=2, replication=1)

    creator = threading.Thread(target=create_once_waited)
    creator.start()
    timer = give_up_later(stop)
    try:
        appeared = wait_for_topics(
            client(kafka_bootstrap), [topic], stop=stop, on_wait=on_wait, poll_s=POLL_S
        )
    finally:
        timer.cancel()
        creator.join()
    assert appeared
    assert missing_seen[0] == [topic]


def test_waiting_returns_false_once_stopped(kafka_bootstrap: str) -> None:
    stop = threading.Event()
    appeared = wait_for_topics(
        client(kafka_bootstrap), [fresh("never")], stop=stop, on_wait=lambda _: stop.set(), poll_s=POLL_S
    )
    assert not appeared


def test_waiting_names_only_the_topics_still_missing(kafka_bootstrap: str) -> None:
    present, absent = fresh("present"), fresh("absent")
    ensure_topics(client(kafka_bootstrap), {present: 1})
    stop = threading.Event()
    missing_seen: list[list[str]] = []

    def on_wait(missing: list[str]) -> None:
        missing_seen.append(missing)
        stop.set()

    wait_for_topics(client(kafka_bootstrap), [present, absent], stop=stop, on_wait=on_wait, poll_s=POLL_S)
    assert missing_seen == [[absent]]


def test_waiting_goes_on_while_no_broker_answers() -> None:
    topics = [fresh("raw"), fresh("out")]
    stop = threading.Event()
    missing_seen: list[list[str]] = []

    def on_wait(missing: list[str]) -> None:
        missing_seen.append(missing)
        if len(missing_seen) == 2:
            stop.set()

    nowhere = client(f"127.0.0.1:{free_port()}")
    appeared = wait_for_topics(nowhere, topics, stop=stop, on_wait=on_wait, poll_s=POLL_S)
    assert not appeared
    assert missing_seen == [topics, topics]


def test_creating_makes_only_the_missing_topics_with_the_given_partitions(kafka_bootstrap: str) -> None:
    existing, first, second = fresh("existing"), fresh("first"), fresh("second")
    ensure_topics(client(kafka_bootstrap), {existing: 1})
    created = create_topics(client(kafka_bootstrap), [existing, first, second], partitions=3, replication=1)
    assert sorted(created) == sorted([first, second])
    assert partition_counts(kafka_bootstrap, [existing, first, second]) == {existing: 1, first: 3, second: 3}


def test_creating_topics_that_all_exist_creates_nothing(kafka_bootstrap: str) -> None:
    topic = fresh("existing")
    ensure_topics(client(kafka_bootstrap), {topic: 1})
    assert create_topics(client(kafka_bootstrap), [topic], partitions=3, replication=1) == []


def test_creating_without_a_broker_is_a_one_line_broker_error() -> None:
    nowhere = client(f"127.0.0.1:{free_port()}")
    with pytest.raises(BrokerError, match=r"^cannot reach Kafka at 127\.0\.0\.1:\d+: [^\n]+$"):
        create_topics(nowhere, [fresh("raw")], partitions=1, replication=1, timeout_s=1.0)
