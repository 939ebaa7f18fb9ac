from datetime import UTC, datetime
from pathlib import Path

import pytest

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.registry import open_registry
from prodcat.schemas.shadow import Flip, LiveJudgement, ShadowSummary, summary_file
from prodcat.trainer.promotion import Thresholds, combine, decide, read_summaries

NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GATE = Thresholds(min_agreement=0.8, min_live_accuracy_gain=0.01, min_judged=100)


def summary(
    *,
    member: str = "m0",
    serving: str = "v1",
    candidate: str = "v2",
    compared: int = 1000,
    agreed: int = 900,
    judged: int = 200,
    serving_correct: int = 160,
    candidate_correct: int = 180,
    flips: tuple[Flip, ...] = (),
) -> ShadowSummary:
    return ShadowSummary(
        model_name="product-categorizer",
        serving_version=serving,
        candidate_version=candidate,
        member=member,
        started_at=NOON,
        updated_at=NOON,
        fraction=0.1,
        window=1000,
        batches_seen=100,
        batches_sampled=10,
        compared=compared,
        agreed=agreed,
        confidence_shift_sum=12.5,
        flips=list(flips),
        live=LiveJudgement(
            judged=judged, serving_correct=serving_correct, candidate_correct=candidate_correct
        ),
    )


def test_a_candidate_that_meets_every_threshold_is_promoted() -> None:
    decision = decide([summary()], candidate="v2", serving="v1", thresholds=GATE)
    assert (decision.promote, decision.refusals) == (True, [])


def test_agreement_below_the_minimum_refuses_with_one_line_naming_it() -> None:
    decision = decide([summary(agreed=700)], candidate="v2", serving="v1", thresholds=GATE)
    assert decision.refusals == ["agreement 0.7000 is below --min-agreement 0.8 on 1000 events"]


def test_too_few_judged_events_refuse_whatever_the_gain() -> None:
    decision = decide(
        [summary(judged=99, serving_correct=0, candidate_correct=99)],
        candidate="v2",
        serving="v1",
        thresholds=GATE,
    )
    assert decision.refusals == ["99 events judged against arrived labels, fewer than --min-judged 100"]


def test_a_gain_below_the_minimum_refuses() -> None:
    decision = decide([summary(candidate_correct=161)], candidate="v2", serving="v1", thresholds=GATE)
    assert decision.refusals == [
        "live accuracy gain +0.0050 (0.8000 -> 0.8050 on 200 events) is below --min-live-accuracy-gain 0.01"
    ]


def test_a_negative_minimum_gain_tolerates_a_small_loss() -> None:
    tolerant = Thresholds(min_agreement=0.8, min_live_accuracy_gain=-0.05, min_judged=100)
    decision = decide([summary(candidate_correct=155)], candidate="v2", serving="v1", thresholds=tolerant)
    assert decision.promote


def test_every_threshold_missed_is_named() -> None:
    decision = decide(
        [summary(agreed=100, candidate_correct=100)], candidate="v2", serving="v1", thresholds=GATE
    )
    assert [line.split()[0] for line in decision.refusals] == ["agreement", "live"]


def test_no_summary_at_all_refuses() -> None:
    decision = decide([], candidate="v2", serving="v1", thresholds=GATE)
    assert decision.refusals == [
        "no shadow summary of v2 judged against the serving v1 (0 against other versions)"
    ]


def test_summaries_judged_against_another_serving_version_do_not_count() -> None:
    decision = decide(
        [summary(serving="v0"), summary(member="m1", agreed=100)],
        candidate="v2",
        serving="v1",
        thresholds=GATE,
    )
    assert (decision.ignored, decision.evidence.members, decision.promote) == (1, 1, False)


def test_summaries_of_another_candidate_do_not_count() -> None:
    decision = decide([summary(candidate="v3")], candidate="v2", serving="v1", thresholds=GATE)
    assert (decision.ignored, decision.promote) == (0, False)


def test_members_add_up_by_counts_not_by_averaging_their_ratios() -> None:
    # 90 % of 1000 and 50 % of 10 agree: 905 of 1010, not the 70 % a mean of ratios gives.
    evidence = combine(
        [
            summary(),
            summary(member="m1", compared=10, agreed=5, judged=0, serving_correct=0, candidate_correct=0),
        ]
    )
    assert (evidence.compared, evidence.agreed, evidence.judged) == (1010, 905, 200)


def test_flip_counts_of_members_add_up() -> None:
    flip = Flip(serving="Books", candidate="Shoes", count=3)
    evidence = combine([summary(flips=(flip,)), summary(member="m1", flips=(flip,))])
    assert evidence.flips == {("Books", "Shoes"): 6}


def test_no_compared_event_refuses() -> None:
    decision = decide([summary(compared=0, agreed=0)], candidate="v2", serving="v1", thresholds=GATE)
    assert decision.refusals[0] == "no event was compared yet (1 members reporting)"


@pytest.mark.parametrize(
    ("field", "value"), [("min_agreement", 1.5), ("min_live_accuracy_gain", -2.0), ("min_judged", 0)]
)
def test_thresholds_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        Thresholds(**{field: value})  # type: ignore[arg-type]


def test_every_members_summary_is_read_from_beside_the_candidate(tmp_path: Path) -> None:
    for member in ("m0", "m1"):
        path = tmp_path / "m" / summary_file("v2", member)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(summary(member=member).model_dump_json())
    assert sorted(s.member for s in read_summaries(open_registry(tmp_path), "m", "v2")) == ["m0", "m1"]


def test_no_summaries_folder_reads_as_none(tmp_path: Path) -> None:
    assert read_summaries(open_registry(tmp_path), "m", "v2") == []


def test_a_file_that_is_not_a_summary_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m" / summary_file("v2", "m0")
    path.parent.mkdir(parents=True)
    path.write_text('{"compared": -1}')
    with pytest.raises(
        CheckpointError, match=r"m0/summary\.json is not a shadow summary: model_name: Field required"
    ):
        read_summaries(open_registry(tmp_path), "m", "v2")


def test_a_member_folder_without_a_summary_yet_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "m" / summary_file("v2", "m0")).parent.mkdir(parents=True)
    assert read_summaries(open_registry(tmp_path), "m", "v2") == []
