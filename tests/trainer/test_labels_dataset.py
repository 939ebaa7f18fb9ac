"""Labels topic to dataset: the latest label wins, unknown labels are refused, no id is in two splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from prodcat.errors import ConfigError
from prodcat.trainer.dataset_build import SPLITS, BuildOptions, build_dataset, write_dataset
from prodcat.trainer.labels_dataset import (
    BaseDataset,
    LabelsReport,
    build_from_labels,
    hash_split,
    latest_labels,
    load_base,
)
from prodcat.trainer.lspc import Offer, ReadStats

LABELS = ("Books", "Shoes")
NOUNS = ("Paperback", "Sneaker")


def label(product_id: str, title: str, category: str, source: str = "reviewer") -> bytes:
    return orjson.dumps({"id": product_id, "title": title, "label": category, "source": source})


def rows(directory: Path) -> dict[str, list[tuple[str, str, str]]]:
    """split -> (cluster_id, text, category) rows as written."""
    written = {}
    for name in SPLITS:
        table = pq.read_table(directory / f"{name}.parquet").to_pylist()
        written[name] = [(r["cluster_id"], r["text"], r["category"]) for r in table]
    return written


def split_of(directory: Path) -> dict[str, set[str]]:
    """cluster_id -> the splits it appears in."""
    found: dict[str, set[str]] = {}
    for name, written in rows(directory).items():
        for cluster, _, _ in written:
            found.setdefault(cluster, set()).add(name)
    return found


@pytest.fixture
def base(tmp_path: Path) -> BaseDataset:
    # 40 products of two titles each: even ones Books, odd ones Shoes.
    offers = [
        Offer(text=f"{NOUNS[c % 2]} {c}-{n}", category=LABELS[c % 2], cluster_id=f"c{c}")
        for c in range(40)
        for n in range(2)
    ]
    built = build_dataset(offers, BuildOptions(categories=LABELS), ReadStats())
    write_dataset(built, tmp_path / "base")
    return load_base(tmp_path / "base")


def test_the_latest_label_of_an_id_wins() -> None:
    report = LabelsReport()
    events = latest_labels(
        [label("1", "Bib", "Books"), label("1", "Bib", "Shoes"), label("2", "Boot", "Shoes")], report
    )
    assert ({k: e.label for k, e in events.items()}, report.superseded) == ({"1": "Shoes", "2": "Shoes"}, 1)


def test_records_that_are_not_label_events_are_counted_and_skipped() -> None:
    report = LabelsReport()
    events = latest_labels(
        [b"not json", None, orjson.dumps({"id": "1", "title": "x"}), label("2", "Boot", "Shoes")], report
    )
    assert (list(events), report.records, report.unreadable) == (["2"], 4, 3)


def test_unknown_labels_are_refused_with_a_count_per_label(tmp_path: Path) -> None:
    values = [label("1", "Hose", "Garden"), label("2", "Rake", "Garden"), label("3", "Boot", "Shoes")]
    description = build_from_labels(values, tmp_path / "out", base=None, labels=LABELS)
    assert description["labels_topic"]["refused"] == {"Garden": 2}
    assert [row[0] for split in rows(tmp_path / "out").values() for row in split] == ["3"]


def test_a_later_unknown_label_withdraws_an_earlier_known_one(tmp_path: Path) -> None:
    values = [label("1", "Hose", "Books"), label("1", "Hose", "Garden"), label("2", "Boot", "Shoes")]
    description = build_from_labels(values, tmp_path / "out", base=None, labels=LABELS)
    assert description["labels_topic"]["refused"] == {"Garden": 1}
    assert "1" not in split_of(tmp_path / "out")


def test_titles_are_normalised_like_a_built_dataset(tmp_path: Path) -> None:
    build_from_labels(
        [label("1", "  Acme &amp; Co   Boot ", "Shoes")], tmp_path / "out", base=None, labels=LABELS
    )
    assert ("1", "Acme & Co Boot", "Shoes") in [r for split in rows(tmp_path / "out").values() for r in split]


def test_a_title_blank_once_normalised_is_not_added_but_still_relabels_its_product(
    base: BaseDataset, tmp_path: Path
) -> None:
    description = build_from_labels(
        [label("c1", "&nbsp;", "Books")], tmp_path / "out", base=base, labels=LABELS
    )
    c1 = {r for split in rows(tmp_path / "out").values() for r in split if r[0] == "c1"}
    assert ({r[2] for r in c1}, len(c1), description["labels_topic"]["blank_titles"]) == ({"Books"}, 2, 1)


def test_an_id_the_base_holds_keeps_its_split(base: BaseDataset, tmp_path: Path) -> None:
    before = split_of(base.directory)
    values = [label(cluster, f"New title for {cluster}", "Books") for cluster in sorted(before)]
    build_from_labels(values, tmp_path / "out", base=base, labels=LABELS)
    assert split_of(tmp_path / "out") == before


def test_a_labelled_id_relabels_every_base_title_of_that_product(base: BaseDataset, tmp_path: Path) -> None:
    description = build_from_labels(
        [label("c1", "Sneaker 1-9", "Books")], tmp_path / "out", base=base, labels=LABELS
    )
    c1 = [r for split in rows(tmp_path / "out").values() for r in split if r[0] == "c1"]
    assert ({r[2] for r in c1}, len(c1), description["labels_topic"]["relabelled"]) == ({"Books"}, 3, 2)


def test_a_latest_label_outside_the_set_drops_the_products_base_titles(
    base: BaseDataset, tmp_path: Path
) -> None:
    description = build_from_labels(
        [label("c1", "Hose", "Garden")], tmp_path / "out", base=base, labels=LABELS
    )
    assert ("c1" in split_of(tmp_path / "out"), description["labels_topic"]["dropped"]) == (False, 2)


def test_a_labelled_title_the_base_already_holds_is_not_added_twice(
    base: BaseDataset, tmp_path: Path
) -> None:
    description = build_from_labels(
        [label("c0", "paperback 0-0", "Books")], tmp_path / "out", base=base, labels=LABELS
    )
    assert (description["labels_topic"]["already_present"], description["labels_topic"]["added"]) == (1, 0)


def test_new_ids_are_split_by_a_hash_of_the_id(base: BaseDataset, tmp_path: Path) -> None:
    ids = [f"new-{n}" for n in range(300)]
    build_from_labels(
        [label(i, f"Boot {i}", "Shoes") for i in ids], tmp_path / "out", base=base, labels=LABELS
    )
    placed = split_of(tmp_path / "out")
    expected = {i: {hash_split(i, validation_fraction=0.1, test_fraction=0.1)} for i in ids}
    assert {i: placed[i] for i in ids} == expected
    shares = Counter(next(iter(s)) for s in expected.values())
    assert 0.05 < shares["test"] / 300 < 0.15 and 0.05 < shares["validation"] / 300 < 0.15


def test_a_new_ids_split_does_not_depend_on_the_order_or_company_of_its_labels(tmp_path: Path) -> None:
    ids = [f"p{n}" for n in range(50)]
    first = [label(i, f"Boot {i}", "Shoes") for i in ids]
    build_from_labels(first, tmp_path / "a", base=None, labels=LABELS)
    build_from_labels(
        [label("extra", "Novel", "Books"), *reversed(first)], tmp_path / "b", base=None, labels=LABELS
    )
    a, b = split_of(tmp_path / "a"), split_of(tmp_path / "b")
    assert {i: a[i] for i in ids} == {i: b[i] for i in ids}


def test_the_base_rows_are_all_kept(base: BaseDataset, tmp_path: Path) -> None:
    build_from_labels([label("new", "Boot", "Shoes")], tmp_path / "out", base=base, labels=LABELS)
    merged = rows(tmp_path / "out")
    assert all(set(rows(base.directory)[name]) <= set(merged[name]) for name in SPLITS)


def test_the_base_label_set_is_used_over_the_given_one(base: BaseDataset, tmp_path: Path) -> None:
    description = build_from_labels(
        [label("new", "Hose", "Garden")], tmp_path / "out", base=base, labels=("Garden", "Books")
    )
    assert (description["labels"], description["labels_topic"]["refused"]) == (list(LABELS), {"Garden": 1})


def test_nothing_to_write_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="no labelled titles to write: 2 records, 1 unreadable, 1 ids refused"
    ):
        build_from_labels([b"{", label("1", "Hose", "Garden")], tmp_path / "out", base=None, labels=LABELS)


def test_a_base_that_is_not_a_dataset_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a dataset directory"):
        load_base(tmp_path)
