"""Service counters (interim: replaced by the prometheus_client version on the metrics branch)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence


class Metrics:
    def __init__(self) -> None:
        self.consumed_total = 0
        self.enriched_total = 0
        self.dead_lettered_by_kind: Counter[str] = Counter()
        self.batches_total = 0
        self.commits_total = 0
        self.reloads_by_result: Counter[str] = Counter()
        self.model_version = ""
        self.assigned_partitions = 0
        self.loop_seen_at = time.monotonic()
        self.lags: dict[tuple[str, int], int] = {}

    def consumed(self, n: int) -> None:
        self.consumed_total += n

    def enriched(self, n: int) -> None:
        self.enriched_total += n

    def dead_lettered(self, kind: str, n: int = 1) -> None:
        self.dead_lettered_by_kind[kind] += n

    def observe_batch(self, *, size: int, real_tokens: int, padded_tokens: int, inference_s: float) -> None:
        self.batches_total += 1

    def observe_latency(self, seconds: Sequence[float]) -> None:
        return None

    def committed(self) -> None:
        self.commits_total += 1

    def reload(self, result: str) -> None:
        self.reloads_by_result[result] += 1

    def set_model(self, *, name: str, version: str) -> None:
        self.model_version = version

    def set_lag(self, lags: Mapping[tuple[str, int], int], *, reliable: bool) -> None:
        self.lags = dict(lags)

    def loop_alive(self, assigned_partitions: int) -> None:
        self.loop_seen_at = time.monotonic()
        self.assigned_partitions = assigned_partitions

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered_by_kind.values())
