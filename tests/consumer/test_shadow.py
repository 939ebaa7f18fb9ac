from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import pytest

from prodcat.consumer.shadow import ShadowJudge, Verdict, as_fraction, sampled, verdicts, write_summary
from prodcat.errors import CheckpointError
from prodcat.model.registry import open_registry
from prodcat.schemas.shadow import Flip, ShadowSummary

LABELS = ("Books", "Shoes", "Baby")
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def judge(*, fraction: float = 1.0, window: int = 100) -> ShadowJudge:
    return ShadowJudge(
        model_name="product-categorizer",
        serving_version="v1",
        candidate_version="v2",
        labels=LABELS,
        member="group.host.0",
        fraction=fraction,
        window=window,
        clock=lambda: NOON,
    )


def v(label: str, confidence: float = 0.5) -> Verdict:
    return Verdict(label, confidence)


def test_a_quarter_samples_every_fourth_batch() -> None:
    assert [n for n in range(12) if sampled(n, Fraction(1, 4))] == [3, 7, 11]


@pytest.mark.parametrize("share", ["0.1", "0.3", "0.37", "1"])
def test_the_sampled_share_is_exact_over_a_long_run(share: str) -> None:
    fraction = as_fraction(float(share))
    assert sum(sampled(n, fraction) for n in range(10_000)) == int(10_000 * Fraction(share))


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01])
def test_a_fraction_outside_zero_to_one_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="shadow fraction"):
        as_fraction(bad)


def test_the_judge_counts_batches_seen_and_sampled() -> None:
    shadow = judge(fraction=0.5)
    taken = [shadow.sample_next_batch() for _ in range(6)]
    summary = shadow.summary()
    assert (taken, summary.batches_seen, summary.batches_sampled) == ([False, True] * 3, 6, 3)


def test_agreement_is_the_share_of_events_given_the_same_label() -> None:
    shadow = judge()
    shadow.observe(["a", "b", "c", "d"], [v("Books")] * 4, [v("Books"), v("Books"), v("Books"), v("Shoes")])
    summary = shadow.summary()
    assert (summary.compared, summary.agreed, summary.agreement) == (4, 3, 0.75)


def test_the_flip_matrix_counts_each_change_of_label_most_frequent_first() -> None:
    shadow = judge()
    shadow.observe(
        ["a", "b", "c", "d"],
        [v("Books"), v("Books"), v("Shoes"), v("Baby")],
        [v("Shoes"), v("Shoes"), v("Baby"), v("Baby")],
    )
    assert shadow.summary().flips == [
        Flip(serving="Books", candidate="Shoes", count=2),
        Flip(serving="Shoes", candidate="Baby", count=1),
    ]


def test_the_confidence_shift_is_the_candidates_minus_the_servings_on_average() -> None:
    shadow = judge()
    shadow.observe(["a", "b"], [v("Books", 0.5), v("Shoes", 0.75)], [v("Books", 0.75), v("Baby", 1.0)])
    assert shadow.summary().mean_confidence_shift == pytest.approx(0.25)


def test_a_batch_with_rows_missing_is_refused() -> None:
    with pytest.raises(ValueError, match="2 ids, 2 serving and 1 candidate"):
        judge().observe(["a", "b"], [v("Books"), v("Books")], [v("Books")])


def test_a_label_outside_the_models_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="'Toys' is not one of"):
        judge().observe(["a"], [v("Toys")], [v("Books")])


def test_an_arriving_label_scores_both_models() -> None:
    shadow = judge()
    shadow.observe(["a", "b", "c"], [v("Books"), v("Shoes"), v("Baby")], [v("Books"), v("Books"), v("Books")])
    for event_id, truth in (("a", "Books"), ("b", "Books"), ("c", "Baby")):
        shadow.label_arrived(event_id, truth)
    live = shadow.summary().live
    assert (live.judged, live.serving_correct, live.candidate_correct) == (3, 2, 2)
    assert (live.serving_accuracy, live.candidate_accuracy, live.awaiting) == (2 / 3, 2 / 3, 0)


def test_a_label_for_an_id_never_compared_is_counted_unmatched() -> None:
    shadow = judge()
    shadow.label_arrived("never-seen", "Books")
    live = shadow.summary().live
    assert (live.unmatched_labels, live.judged) == (1, 0)


def test_a_second_label_for_the_same_id_is_not_judged_twice() -> None:
    shadow = judge()
    shadow.observe(["a"], [v("Books")], [v("Books")])
    shadow.label_arrived("a", "Books")
    shadow.label_arrived("a", "Shoes")
    live = shadow.summary().live
    assert (live.judged, live.unmatched_labels) == (1, 1)


def test_a_label_outside_the_label_set_is_counted_and_not_judged() -> None:
    shadow = judge()
    shadow.observe(["a"], [v("Books")], [v("Shoes")])
    shadow.label_arrived("a", "Garden")
    live = shadow.summary().live
    assert (live.unknown_labels, live.judged, live.awaiting) == (1, 0, 0)


def test_the_window_evicts_the_oldest_waiting_event_and_counts_it() -> None:
    shadow = judge(window=2)
    shadow.observe(["a", "b", "c"], [v("Books")] * 3, [v("Books")] * 3)
    shadow.label_arrived("a", "Books")
    shadow.label_arrived("c", "Books")
    live = shadow.summary().live
    assert (shadow.awaiting, live.evicted, live.unmatched_labels, live.judged) == (1, 1, 1, 1)


def test_a_repeated_id_is_judged_on_its_latest_verdicts() -> None:
    shadow = judge()
    shadow.observe(["a"], [v("Books")], [v("Books")])
    shadow.observe(["a"], [v("Shoes")], [v("Books")])
    shadow.label_arrived("a", "Shoes")
    live = shadow.summary().live
    assert (shadow.awaiting, live.serving_correct, live.candidate_correct) == (0, 1, 0)


def test_a_repeated_id_takes_one_place_in_the_window() -> None:
    shadow = judge(window=2)
    shadow.observe(["a", "b", "a", "b"], [v("Books")] * 4, [v("Books")] * 4)
    assert (shadow.awaiting, shadow.summary().live.evicted) == (2, 0)


def test_the_summary_round_trips_through_its_json() -> None:
    shadow = judge()
    shadow.observe(["a", "b"], [v("Books", 0.9), v("Shoes", 0.6)], [v("Books", 0.8), v("Baby", 0.7)])
    shadow.label_arrived("b", "Baby")
    summary = shadow.summary()
    assert ShadowSummary.model_validate_json(summary.model_dump_json()) == summary


def test_the_summary_is_written_beside_the_candidate_not_inside_it(tmp_path: Path) -> None:
    shadow = judge()
    shadow.observe(["a"], [v("Books")], [v("Books")])
    key = write_summary(open_registry(tmp_path), "m", shadow.summary())
    path = tmp_path / "m" / ".shadow" / "v2" / "group.host.0" / "summary.json"
    assert key == "m/.shadow/v2/group.host.0/summary.json"
    assert ShadowSummary.model_validate_json(path.read_bytes()).compared == 1


def test_a_members_next_summary_replaces_its_last(tmp_path: Path) -> None:
    registry, shadow = open_registry(tmp_path), judge()
    write_summary(registry, "m", shadow.summary())
    shadow.observe(["a", "b"], [v("Books"), v("Books")], [v("Books"), v("Baby")])
    key = write_summary(registry, "m", shadow.summary())
    assert ShadowSummary.model_validate_json((tmp_path / key).read_bytes()).compared == 2


def test_a_member_name_that_is_not_a_plain_name_is_refused() -> None:
    with pytest.raises(CheckpointError, match="shadow member"):
        ShadowJudge(
            model_name="m",
            serving_version="v1",
            candidate_version="v2",
            labels=LABELS,
            member="../x",
            fraction=1.0,
        )


def test_verdicts_are_each_rows_best_label_and_score() -> None:
    assert verdicts(LABELS, [[2, 0], [1, 2]], [[0.7, 0.2], [0.5, 0.4]]) == [v("Baby", 0.7), v("Shoes", 0.5)]


def test_a_repeated_id_moves_to_the_newest_place_in_the_window() -> None:
    shadow = judge(window=2)
    shadow.observe(["a", "b", "a", "c"], [v("Books"), v("Shoes"), v("Books"), v("Books")], [v("Books")] * 4)
    shadow.label_arrived("a", "Books")
    shadow.label_arrived("b", "Books")
    live = shadow.summary().live
    # b was the oldest once a came again, so c pushed b out, not a: a is judged (served right).
    assert (live.judged, live.serving_correct, live.evicted) == (1, 1, 1)


def test_a_labels_topic_record_is_parsed_and_judged() -> None:
    shadow = judge()
    shadow.observe(["7"], [v("Books")], [v("Shoes")])
    shadow.label_record(b'{"id": 7, "title": "Trail Runner", "label": "Shoes", "source": "reviewer"}')
    live = shadow.summary().live
    assert (live.judged, live.serving_correct, live.candidate_correct) == (1, 0, 1)


def test_a_labels_topic_record_that_is_not_a_label_event_is_counted() -> None:
    shadow = judge()
    shadow.label_record(b'{"id": "7", "label": "Shoes"}')
    shadow.label_record(None)
    assert shadow.summary().live.unreadable_labels == 2
