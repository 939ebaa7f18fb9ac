from __future__ import annotations

from collections import Counter

import pytest

from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.trainer.data import label_index, split
from prodcat.trainer.records import LabeledTitle
from prodcat.trainer.sample_corpus import generate

RECORDS = generate(per_class=40, seed=3)


def test_split_puts_every_category_in_both_parts() -> None:
    train, validation = split(RECORDS)
    assert {r.category for r in train} == set(DEFAULT_CATEGORIES)
    assert {r.category for r in validation} == set(DEFAULT_CATEGORIES)


def test_split_parts_are_disjoint_and_cover_every_record() -> None:
    train, validation = split(RECORDS)
    assert not set(train) & set(validation)
    assert Counter(train) + Counter(validation) == Counter(RECORDS)


def test_split_holds_out_the_requested_fraction_of_each_category() -> None:
    _, validation = split(RECORDS, validation_fraction=0.25)
    assert Counter(r.category for r in validation) == {c: 10 for c in DEFAULT_CATEGORIES}


def test_split_is_reproducible_for_a_seed() -> None:
    assert split(RECORDS, seed=5) == split(RECORDS, seed=5)


def test_split_depends_on_the_seed() -> None:
    assert split(RECORDS, seed=5) != split(RECORDS, seed=6)


def test_split_keeps_a_single_record_category_for_training() -> None:
    lonely = LabeledTitle("Garden Hose 30m", "Garden")
    train, validation = split([*RECORDS, lonely])
    assert lonely in train
    assert lonely not in validation


def test_split_keeps_the_input_order_within_each_part() -> None:
    train, _ = split(RECORDS)
    positions = [RECORDS.index(r) for r in train]
    assert positions == sorted(positions)


def test_split_rejects_a_fraction_outside_zero_and_one() -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        split(RECORDS, validation_fraction=1.0)


def test_label_index_numbers_labels_in_the_given_order() -> None:
    assert label_index(["Books", "Automotive"]) == {"Books": 0, "Automotive": 1}


def test_label_index_rejects_duplicate_labels() -> None:
    with pytest.raises(ValueError, match="unique"):
        label_index(["Books", "Books"])
