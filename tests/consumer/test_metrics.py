import math

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from prodcat.consumer.classify.reload import State
from prodcat.consumer.metrics import Metrics
from prodcat.schemas.events import ErrorKind


def samples(metrics: Metrics) -> dict[str, list[Sample]]:
    """The exposition as a client would read it: samples by metric family name."""
    return {
        family.name: family.samples for family in text_string_to_metric_families(metrics.render().decode())
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counters_read_back_as_plain_totals() -> None:
    metrics = Metrics()
    metrics.consumed(10)
    metrics.enriched(7)
    metrics.committed()
    metrics.committed()
    assert (metrics.consumed_total, metrics.enriched_total, metrics.commits_total) == (10, 7, 2)


def test_counters_are_exposed_under_their_prometheus_names() -> None:
    metrics = Metrics()
    metrics.consumed(10)
    metrics.enriched(7)
    assert value(metrics, "prodcat_events_consumed_total") == 10
    assert value(metrics, "prodcat_events_enriched_total") == 7


def test_dead_letters_are_counted_by_kind() -> None:
    metrics = Metrics()
    metrics.dead_lettered(ErrorKind.INVALID_JSON, 3)
    metrics.dead_lettered(ErrorKind.SCHEMA_VIOLATION)
    assert metrics.dead_lettered_by_kind == {ErrorKind.INVALID_JSON: 3, ErrorKind.SCHEMA_VIOLATION: 1}
    assert metrics.dead_lettered_total == 4
    assert value(metrics, "prodcat_events_dead_lettered_total", kind=ErrorKind.INVALID_JSON) == 3


def test_each_instance_counts_on_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.consumed(5)
    assert (first.consumed_total, second.consumed_total) == (5, 0)


def test_process_metrics_are_exposed() -> None:
    assert "process_cpu_seconds" in samples(Metrics())


def test_exposition_parses_and_holds_the_batch_histograms_after_a_batch() -> None:
    metrics = Metrics()
    metrics.observe_batch(size=32, real_tokens=400, padded_tokens=640, inference_s=0.02)
    families = samples(metrics)
    for name in (
        "prodcat_batch_size",
        "prodcat_batch_real_tokens",
        "prodcat_batch_padded_tokens",
        "prodcat_inference_seconds",
    ):
        count = next(s for s in families[name] if s.name == f"{name}_count")
        assert count.value == 1, name
    assert value(metrics, "prodcat_batch_padded_tokens_sum") == 640
    assert metrics.batches_total == 1


def test_inference_time_reads_back_as_a_total() -> None:
    metrics = Metrics()
    metrics.observe_batch(size=1, real_tokens=16, padded_tokens=16, inference_s=0.25)
    metrics.observe_batch(size=1, real_tokens=16, padded_tokens=16, inference_s=0.5)
    assert metrics.inference_seconds_total == 0.75


def test_end_to_end_latencies_land_in_their_buckets() -> None:
    metrics = Metrics()
    metrics.observe_latency([0.004, 0.3, 42.0])
    assert value(metrics, "prodcat_end_to_end_latency_seconds_count") == 3
    assert value(metrics, "prodcat_end_to_end_latency_seconds_bucket", le="0.005") == 1
    assert value(metrics, "prodcat_end_to_end_latency_seconds_bucket", le="0.5") == 2


def test_reloads_are_counted_by_result_and_exposed_at_zero_from_the_start() -> None:
    metrics = Metrics()
    assert value(metrics, "prodcat_model_reloads_total", result="refused") == 0
    metrics.reload("loaded")
    assert metrics.reloads_by_result == {"loaded": 1, "refused": 0}


def test_reload_transitions_are_counted_by_the_state_entered() -> None:
    metrics = Metrics()
    for state in (State.LOADING, State.VERIFYING, State.BACKOFF, State.LOADING):
        metrics.reload_state(state)
    assert value(metrics, "prodcat_model_reload_transitions_total", state="loading") == 2
    assert metrics.reload_transitions == {"loading": 2, "verifying": 1, "backoff": 1}


def test_setting_the_model_replaces_the_previous_label_set() -> None:
    metrics = Metrics()
    metrics.set_model(name="qwen3", version="v1")
    metrics.set_model(name="qwen3", version="v2")
    info = samples(metrics)["prodcat_model_info"]
    assert [s.labels for s in info] == [{"name": "qwen3", "version": "v2"}]
    assert metrics.model_version == "v2"


def test_lag_of_partitions_no_longer_reported_is_removed() -> None:
    metrics = Metrics()
    metrics.set_lag({("raw", 0): 5, ("raw", 1): 3}, reliable=True)
    metrics.set_lag({("raw", 1): 2}, reliable=True)
    lag = samples(metrics)["prodcat_consumer_lag"]
    assert [(s.labels, s.value) for s in lag] == [({"topic": "raw", "partition": "1"}, 2)]


def test_lag_reliability_is_a_zero_or_one_gauge() -> None:
    metrics = Metrics()
    metrics.set_lag({("raw", 0): 1}, reliable=False)
    assert value(metrics, "prodcat_consumer_lag_reliable") == 0
    metrics.set_lag({("raw", 0): 1}, reliable=True)
    assert value(metrics, "prodcat_consumer_lag_reliable") == 1


def test_loop_age_is_unknown_until_the_loop_first_comes_round() -> None:
    metrics = Metrics()
    assert metrics.loop_age_s() is None
    age = value(metrics, "prodcat_main_loop_age_seconds")
    assert age is not None and math.isnan(age)


def test_loop_age_counts_from_the_last_time_the_loop_came_round() -> None:
    now = [100.0]
    metrics = Metrics(clock=lambda: now[0])
    metrics.loop_alive(assigned_partitions=4)
    now[0] += 7.5
    assert metrics.loop_age_s() == 7.5
    assert value(metrics, "prodcat_main_loop_age_seconds") == 7.5
    assert value(metrics, "prodcat_assigned_partitions") == 4
