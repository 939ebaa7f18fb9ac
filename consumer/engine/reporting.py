"""The lag reporter and the run's counts: metrics cheaper once per round than once per record."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from prodcat.consumer.client_config import BrokerHealth
from prodcat.consumer.delivery import Delivery
from prodcat.consumer.engine.dead_letters import ENRICHED, REVIEW, Ref
from prodcat.consumer.health import Readiness
from prodcat.consumer.metrics import Metrics
from prodcat.consumer.source import KafkaSource

LAG_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class RunSummary:
    consumed: int
    enriched: int
    dead_lettered: int
    seconds: float
    """From the first record consumed to the last one committed; group joins are not counted."""

    @property
    def per_second(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0


class Reporter:
    def __init__(
        self,
        *,
        metrics: Metrics,
        readiness: Readiness,
        broker: BrokerHealth,
        clock: Callable[[], float],
    ) -> None:
        self._metrics = metrics
        self._readiness = readiness
        self._broker = broker
        self._clock = clock
        self._next_lag = clock() + LAG_EVERY_S
        self._reported: Counter[str] = Counter()
        self._consumed = 0
        self._first_record_at: float | None = None
        self._last_done_at: float | None = None

    def consumed(self, count: int) -> None:
        if self._first_record_at is None:
            self._first_record_at = time.monotonic()
        self._consumed += count
        self._metrics.consumed(count)
        self._broker.mark_reachable()

    def report(self, delivery: Delivery[Ref], source: KafkaSource) -> None:
        metrics = self._metrics
        for kind, total in delivery.acknowledged.items():
            new = total - self._reported[kind]
            if new:
                self._reported[kind] = total
                self._last_done_at = time.monotonic()
                if kind == ENRICHED:
                    metrics.enriched(new)
                elif kind != REVIEW:
                    metrics.dead_lettered(kind, new)
        metrics.loop_alive(len(source.assigned))
        self._readiness.broker_reachable = self._broker.reachable
        now = self._clock()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            self._update_lag(delivery, source)

    def _update_lag(self, delivery: Delivery[Ref], source: KafkaSource) -> None:
        committed = delivery.committed_offsets()
        ends = source.high_watermarks(source.assigned)
        lags = {tp: max(0, end - committed.get(tp, 0)) for tp, end in ends.items()}
        # A broker whose end offsets trail what this member already committed reports wrong
        # watermarks (the embedded broker does); the lag is then published but marked.
        reliable = all(end >= committed.get(tp, 0) for tp, end in ends.items())
        self._metrics.set_lag(lags, reliable=reliable)

    def summary(self) -> RunSummary:
        started = self._first_record_at
        return RunSummary(
            consumed=self._consumed,
            enriched=self._reported[ENRICHED],
            dead_lettered=sum(n for kind, n in self._reported.items() if kind not in (ENRICHED, REVIEW)),
            seconds=max(0.0, (self._last_done_at or 0.0) - started) if started is not None else 0.0,
        )
