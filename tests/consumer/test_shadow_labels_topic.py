"""The shadow judge fed from a real labels topic: labels arriving after the comparison are joined by id."""

from __future__ import annotations

import time

import orjson

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.shadow import ShadowJudge, Verdict
from prodcat.consumer.source import Record, TopicTail
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings


def poll_until(tail: TopicTail, count: int, timeout_s: float = 30.0) -> list[Record]:
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records += tail.poll(100)
        time.sleep(0.05)
    return records


def label(product_id: str, category: str) -> bytes:
    return orjson.dumps({"id": product_id, "title": "t", "label": category, "source": "reviewer"})


def test_a_tail_hands_out_the_records_produced_after_it_started(kafka_bootstrap: str) -> None:
    settings = scratch_settings(kafka_bootstrap, "tail")
    tail = TopicTail(kafka_client_config(settings), settings.input_topic)
    tail.start()
    try:
        produce_values([label(f"p{n}", "Books") for n in range(5)], settings)
        records = poll_until(tail, 5)
    finally:
        tail.close()
    assert sorted(orjson.loads(r.value or b"")["id"] for r in records) == [f"p{n}" for n in range(5)]


def test_records_already_on_the_topic_when_it_started_are_not_handed_out(kafka_bootstrap: str) -> None:
    # One record before: the embedded broker's end offset is right for a one-record partition.
    settings = scratch_settings(kafka_bootstrap, "tail-old", partitions=1)
    produce_values([label("old", "Books")], settings)
    tail = TopicTail(kafka_client_config(settings), settings.input_topic)
    tail.start()
    try:
        produce_values([label("new", "Shoes")], settings)
        records = poll_until(tail, 1)
        time.sleep(1.0)
        records += tail.poll(100)
    finally:
        tail.close()
    assert [orjson.loads(r.value or b"")["id"] for r in records] == ["new"]


def test_labels_arriving_on_the_topic_score_both_models(kafka_bootstrap: str) -> None:
    settings = scratch_settings(kafka_bootstrap, "shadow-labels")
    shadow = ShadowJudge(
        model_name="m",
        serving_version="v1",
        candidate_version="v2",
        labels=("Books", "Shoes"),
        member="g.h.0",
        fraction=1.0,
    )
    shadow.observe(
        ["a", "b", "c"],
        [Verdict("Books", 0.9), Verdict("Books", 0.6), Verdict("Shoes", 0.7)],
        [Verdict("Books", 0.8), Verdict("Shoes", 0.7), Verdict("Shoes", 0.9)],
    )
    tail = TopicTail(kafka_client_config(settings), settings.input_topic)
    tail.start()
    try:
        produce_values([label("a", "Books"), label("b", "Shoes"), label("c", "Books"), b"{}"], settings)
        for record in poll_until(tail, 4):
            shadow.label_record(record.value)
    finally:
        tail.close()
    live = shadow.summary().live
    assert (live.judged, live.serving_correct, live.candidate_correct, live.unreadable_labels) == (3, 1, 2, 1)
