"""The rebalance handler alone, on a real delivery object over strict Kafka fakes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prodcat.consumer.classify.device import DeviceFailure
from prodcat.consumer.client_config import BrokerHealth
from prodcat.consumer.delivery import Delivery, Refusal
from prodcat.consumer.engine.dead_letters import Ref
from prodcat.consumer.engine.rebalance import RebalanceHandler
from prodcat.consumer.engine.reorder import ReorderBuffer
from prodcat.consumer.health import Readiness
from prodcat.consumer.offsets import TopicPartitionKey
from tests.kafka_fakes import FakeSink, FakeSource, Log

TP: TopicPartitionKey = ("raw", 0)


def hung() -> None:
    raise DeviceFailure("the device did not finish its batches within 1s; it is hung")


def handler_for(log: Log, drain: Callable[[], None]) -> tuple[RebalanceHandler, Delivery[Ref]]:
    refused: list[Refusal[Ref]] = []
    delivery: Delivery[Ref] = Delivery(
        FakeSource(log), FakeSink(log, refuse=set(), fail=set()), on_refusal=refused.append
    )
    handler = RebalanceHandler(
        delivery=delivery,
        reorder=ReorderBuffer(lambda ready: None),
        drain=drain,
        assigned=lambda: 0,
        readiness=Readiness(),
        broker=BrokerHealth(),
    )
    return handler, delivery


def test_a_revoke_whose_drain_runs_out_of_time_commits_nothing() -> None:
    log = Log()
    handler, delivery = handler_for(log, hung)
    delivery.track(TP, 0).mark_done(0)

    with pytest.raises(DeviceFailure, match="hung"):
        handler.on_revoke({TP})

    assert "commit" not in log.names()


def test_after_a_failure_a_revoke_is_a_loss() -> None:
    log = Log()
    handler, delivery = handler_for(log, lambda: None)
    delivery.track(TP, 0).mark_done(0)
    handler.failing = True

    handler.on_revoke({TP})
    delivery.close()

    assert "commit" not in log.names()


def test_a_revoke_commits_what_was_done() -> None:
    log = Log()
    handler, delivery = handler_for(log, lambda: None)
    delivery.track(TP, 0).mark_done(0)

    handler.on_revoke({TP})

    assert ("commit", {TP: 1}) in log.calls
