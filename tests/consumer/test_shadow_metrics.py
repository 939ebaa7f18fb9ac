from datetime import UTC, datetime

import pytest

from prodcat.consumer.metrics import Metrics
from prodcat.consumer.shadow import ShadowJudge, Verdict


def judge(candidate: str) -> ShadowJudge:
    return ShadowJudge(
        model_name="m",
        serving_version="v1",
        candidate_version=candidate,
        labels=("Books", "Shoes"),
        member="g.h.0",
        fraction=1.0,
        clock=lambda: datetime(2026, 12, 3, tzinfo=UTC),
    )


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_the_shadow_totals_are_exposed_per_candidate() -> None:
    shadow = judge("v2")
    shadow.observe(
        ["a", "b", "c"],
        [Verdict("Books", 0.9)] * 3,
        [Verdict("Books", 0.8), Verdict("Shoes", 0.6), Verdict("Shoes", 0.7)],
    )
    shadow.label_arrived("b", "Shoes")
    metrics = Metrics()
    metrics.observe_shadow(shadow.summary())
    assert [
        value(metrics, "prodcat_shadow_events", candidate="v2", count=c)
        for c in ("compared", "agreed", "judged", "awaiting")
    ] == [3, 1, 1, 2]
    assert value(metrics, "prodcat_shadow_correct", candidate="v2", model="candidate") == 1
    assert value(metrics, "prodcat_shadow_correct", candidate="v2", model="serving") == 0
    assert (
        value(metrics, "prodcat_shadow_flips", candidate="v2", serving_label="Books", candidate_label="Shoes")
        == 2
    )
    assert value(metrics, "prodcat_shadow_confidence_shift_sum", candidate="v2") == pytest.approx(-0.6)


def test_a_new_candidate_replaces_the_previous_ones_series() -> None:
    metrics = Metrics()
    metrics.observe_shadow(judge("v2").summary())
    metrics.observe_shadow(judge("v3").summary())
    assert value(metrics, "prodcat_shadow_events", candidate="v2", count="compared") is None
    assert value(metrics, "prodcat_shadow_events", candidate="v3", count="compared") == 0
