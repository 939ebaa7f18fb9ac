"""The service's Prometheus metrics, with plain readings of them for tests, the demo and summaries.

Each `Metrics` owns its registry: tests build many services in one process, and a shared
default registry would refuse the second set of names.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

from prodcat.consumer.offsets import TopicPartitionKey
from prodcat.schemas.shadow import ShadowSummary

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
INFERENCE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = tuple(float(2**n) for n in range(13))  # 1 .. 4096
TOKEN_BUCKETS = tuple(float(4**n) for n in range(2, 11))  # 16 .. 1,048,576
RELOAD_RESULTS = ("loaded", "refused")


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._loop_seen_at: float | None = None
        self._lag_partitions: set[TopicPartitionKey] = set()
        self._shadow_candidate: str | None = None
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        on = self.registry
        self._consumed = Counter(
            "prodcat_events_consumed_total", "Records polled from the input topic.", registry=on
        )
        self._enriched = Counter(
            "prodcat_events_enriched_total", "Enriched records the broker acknowledged.", registry=on
        )
        self._dead_lettered = Counter(
            "prodcat_events_dead_lettered_total",
            "Dead letters the broker acknowledged, by error kind.",
            ["kind"],
            registry=on,
        )
        self._flagged = Counter(
            "prodcat_events_flagged_for_review_total",
            "Enriched events flagged for review (and written to the review topic), by label and reason.",
            ["label", "reason"],
            registry=on,
        )
        self._batches = Counter("prodcat_batches_total", "Batches classified.", registry=on)
        self._shadow = Gauge(
            "prodcat_shadow_events",
            "Since the shadow judge started on this candidate: events compared, agreed (same top-1 "
            "label), judged against an arrived label, awaiting one, evicted from the window.",
            ["candidate", "count"],
            registry=on,
        )
        self._shadow_correct = Gauge(
            "prodcat_shadow_correct",
            "Judged events each model labelled as the labels topic later did.",
            ["candidate", "model"],
            registry=on,
        )
        self._shadow_shift = Gauge(
            "prodcat_shadow_confidence_shift_sum",
            "Sum of the candidate's top-1 confidence minus the serving model's over compared events.",
            ["candidate"],
            registry=on,
        )
        self._shadow_flips = Gauge(
            "prodcat_shadow_flips",
            "Compared events the serving model gave one label and the candidate another.",
            ["candidate", "serving_label", "candidate_label"],
            registry=on,
        )
        self._commits = Counter(
            "prodcat_offset_commits_total", "Offset commits that carried offsets.", registry=on
        )
        self._reloads = Counter(
            "prodcat_model_reloads_total", "Hot reloads by result (loaded, refused).", ["result"], registry=on
        )
        for result in RELOAD_RESULTS:
            # Present at zero from the start, so rate() over them has a beginning.
            self._reloads.labels(result=result)
        self._reload_states = Counter(
            "prodcat_model_reload_transitions_total",
            "Transitions of the reload state machine, by the state entered.",
            ["state"],
            registry=on,
        )
        self._model = Info("prodcat_model", "The checkpoint now serving.", registry=on)
        self._assigned = Gauge(
            "prodcat_assigned_partitions", "Input partitions assigned to this member.", registry=on
        )
        self._loop_age = Gauge(
            "prodcat_main_loop_age_seconds",
            "Seconds since the main loop last came round; NaN until it first does.",
            registry=on,
        )
        self._loop_age.set_function(self._loop_age_or_nan)
        self._lag = Gauge(
            "prodcat_consumer_lag",
            "Records between the committed offset and the high watermark, per assigned partition.",
            ["topic", "partition"],
            registry=on,
        )
        self._lag_reliable = Gauge(
            "prodcat_consumer_lag_reliable",
            "1 when the broker's high watermarks can be trusted for prodcat_consumer_lag, else 0.",
            registry=on,
        )
        self._latency = Histogram(
            "prodcat_end_to_end_latency_seconds",
            "From a record's timestamp to the broker's acknowledgement of its output.",
            buckets=LATENCY_BUCKETS_S,
            registry=on,
        )
        self._inference = Histogram(
            "prodcat_inference_seconds",
            "Forward pass time per batch.",
            buckets=INFERENCE_BUCKETS_S,
            registry=on,
        )
        self._batch_size = Histogram(
            "prodcat_batch_size", "Titles per batch.", buckets=BATCH_SIZE_BUCKETS, registry=on
        )
        self._padded_tokens = Histogram(
            "prodcat_batch_padded_tokens",
            "Tokens per batch as run, padding included (titles x longest title).",
            buckets=TOKEN_BUCKETS,
            registry=on,
        )
        self._real_tokens = Histogram(
            "prodcat_batch_real_tokens",
            "Tokens per batch without padding; the ratio of the _sum series to padded tokens' is the "
            "share of compute spent on real tokens.",
            buckets=TOKEN_BUCKETS,
            registry=on,
        )

    def consumed(self, n: int) -> None:
        self._consumed.inc(n)

    def enriched(self, n: int) -> None:
        self._enriched.inc(n)

    def dead_lettered(self, kind: str, n: int = 1) -> None:
        self._dead_lettered.labels(kind=kind).inc(n)

    def flagged_for_review(self, label: str, reason: str, n: int = 1) -> None:
        self._flagged.labels(label=label, reason=reason).inc(n)

    def observe_shadow(self, summary: ShadowSummary) -> None:
        """The shadow judge's totals; a new candidate's replace the previous one's."""
        candidate = summary.candidate_version
        if self._shadow_candidate != candidate:
            for gauge in (self._shadow, self._shadow_correct, self._shadow_shift, self._shadow_flips):
                gauge.clear()
            self._shadow_candidate = candidate
        live = summary.live
        counts = {
            "compared": summary.compared,
            "agreed": summary.agreed,
            "judged": live.judged,
            "awaiting": live.awaiting,
            "evicted": live.evicted,
        }
        for name, value in counts.items():
            self._shadow.labels(candidate=candidate, count=name).set(value)
        self._shadow_correct.labels(candidate=candidate, model="serving").set(live.serving_correct)
        self._shadow_correct.labels(candidate=candidate, model="candidate").set(live.candidate_correct)
        self._shadow_shift.labels(candidate=candidate).set(summary.confidence_shift_sum)
        for flip in summary.flips:
            self._shadow_flips.labels(
                candidate=candidate, serving_label=flip.serving, candidate_label=flip.candidate
            ).set(flip.count)

    def observe_batch(self, *, size: int, real_tokens: int, padded_tokens: int, inference_s: float) -> None:
        self._batches.inc()
        self._batch_size.observe(size)
        self._real_tokens.observe(real_tokens)
        self._padded_tokens.observe(padded_tokens)
        self._inference.observe(inference_s)

    def observe_latency(self, seconds: Sequence[float]) -> None:
        for value in seconds:
            self._latency.observe(value)

    def committed(self) -> None:
        self._commits.inc()

    def reload(self, result: str) -> None:
        self._reloads.labels(result=result).inc()

    def reload_state(self, state: str) -> None:
        self._reload_states.labels(state=state).inc()

    def set_model(self, *, name: str, version: str) -> None:
        self._model.info({"name": name, "version": version})

    def set_lag(self, lags: Mapping[TopicPartitionKey, int], *, reliable: bool) -> None:
        """Partitions absent from `lags` (revoked, or never ours) stop being reported."""
        for topic, partition in self._lag_partitions - lags.keys():
            self._lag.remove(topic, str(partition))
        for (topic, partition), lag in lags.items():
            self._lag.labels(topic=topic, partition=str(partition)).set(lag)
        self._lag_partitions = set(lags)
        self._lag_reliable.set(1 if reliable else 0)

    def loop_alive(self, assigned_partitions: int) -> None:
        self._loop_seen_at = self._clock()
        self._assigned.set(assigned_partitions)

    def loop_age_s(self) -> float | None:
        """Seconds since the main loop last came round; None before it first does."""
        if self._loop_seen_at is None:
            return None
        return self._clock() - self._loop_seen_at

    def _loop_age_or_nan(self) -> float:
        age = self.loop_age_s()
        return math.nan if age is None else age

    @property
    def consumed_total(self) -> int:
        return int(_total(self._consumed))

    @property
    def enriched_total(self) -> int:
        return int(_total(self._enriched))

    @property
    def dead_lettered_by_kind(self) -> dict[str, int]:
        return _totals_by(self._dead_lettered, "kind")

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered_by_kind.values())

    @property
    def flagged_for_review_by_label(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for sample in _samples(self._flagged):
            if sample.name.endswith("_total"):
                label = sample.labels["label"]
                totals[label] = totals.get(label, 0) + int(sample.value)
        return totals

    @property
    def batches_total(self) -> int:
        return int(_total(self._batches))

    @property
    def commits_total(self) -> int:
        return int(_total(self._commits))

    @property
    def reloads_by_result(self) -> dict[str, int]:
        return _totals_by(self._reloads, "result")

    @property
    def reload_transitions(self) -> dict[str, int]:
        return _totals_by(self._reload_states, "state")

    @property
    def inference_seconds_total(self) -> float:
        return sum(s.value for s in _samples(self._inference) if s.name.endswith("_sum"))

    @property
    def model_version(self) -> str:
        for sample in _samples(self._model):
            return sample.labels.get("version", "")
        return ""

    def render(self) -> bytes:
        """Prometheus text exposition of every metric, process metrics included."""
        return generate_latest(self.registry)


def _samples(metric: MetricWrapperBase) -> Iterator[Sample]:
    for family in metric.collect():
        yield from family.samples


def _total(counter: Counter) -> float:
    return sum(s.value for s in _samples(counter) if s.name.endswith("_total"))


def _totals_by(counter: Counter, label: str) -> dict[str, int]:
    return {s.labels[label]: int(s.value) for s in _samples(counter) if s.name.endswith("_total")}
