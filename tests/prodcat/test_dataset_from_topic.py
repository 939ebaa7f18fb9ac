"""`prodcat dataset from-topic` against a real broker: the labels topic, read to its end, to a dataset."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import read_to_end
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.trainer.dataset_build import SPLITS, BuildOptions, build_dataset, write_dataset
from prodcat.trainer.lspc import Offer, ReadStats
from tests.cli_runner import run_cli

LABELS = ("Books", "Shoes")


def label(product_id: str, category: str) -> bytes:
    return orjson.dumps(
        {"id": product_id, "title": f"Item {product_id}", "label": category, "source": "test"}
    )


@pytest.fixture
def labels_topic(kafka_bootstrap: str) -> ConsumerSettings:
    """A 3-partition topic of label events (the scratch input topic), keyed by id."""
    settings = scratch_settings(kafka_bootstrap, "labels")
    first = [label(f"p{n}", "Books") for n in range(30)]
    # Every even id is corrected once; p1 and p3 end on a label outside the set (so p1 and p3
    # leave the dataset, their base titles too).
    corrections = [label(f"p{n}", "Shoes") for n in range(0, 30, 2)] + [
        label("p1", "Garden"),
        label("p3", "Toys"),
    ]
    produce_values([*first, *corrections, b"not a label"], settings)
    return settings


def written(directory: Path) -> dict[str, tuple[str, str]]:
    """id -> (split, label) over the dataset's splits."""
    found = {}
    for name in SPLITS:
        for row in pq.read_table(directory / f"{name}.parquet").to_pylist():
            found[row["cluster_id"]] = (name, row["category"])
    return found


def test_the_topic_is_read_to_its_end_in_each_partitions_order(labels_topic: ConsumerSettings) -> None:
    records = read_to_end(kafka_client_config(labels_topic), labels_topic.input_topic, idle_s=2.0)
    assert len(records) == 48
    for partition in {r.partition for r in records}:
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == sorted(offsets)


def test_a_topic_longer_than_one_poll_is_read_whole(kafka_bootstrap: str) -> None:
    # 1000 records is the most one poll returns: more proves the reader goes on polling,
    # even where the broker's end offsets are wrong.
    settings = scratch_settings(kafka_bootstrap, "long-labels", partitions=1)
    produce_values([label(f"p{n}", "Books") for n in range(2500)], settings)
    records = read_to_end(kafka_client_config(settings), settings.input_topic, idle_s=2.0)
    assert [r.offset for r in records] == list(range(2500))


def test_an_empty_topic_reads_as_no_records(kafka_bootstrap: str) -> None:
    settings = scratch_settings(kafka_bootstrap, "empty-labels")
    assert read_to_end(kafka_client_config(settings), settings.input_topic, idle_s=1.0) == []


def test_labels_from_the_topic_become_a_dataset_merged_with_a_base(
    labels_topic: ConsumerSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_offers = [Offer(text=f"Base {c}", category="Books", cluster_id=f"p{c}") for c in range(4)] + [
        Offer(text=f"Other {c}", category="Shoes", cluster_id=f"b{c}") for c in range(20)
    ]
    write_dataset(build_dataset(base_offers, BuildOptions(categories=LABELS), ReadStats()), tmp_path / "base")
    base_splits = {k: v[0] for k, v in written(tmp_path / "base").items()}

    code, err = run_cli(
        capsys,
        "dataset",
        "from-topic",
        "--labels-topic",
        labels_topic.input_topic,
        "--bootstrap-servers",
        labels_topic.bootstrap_servers,
        "--base",
        str(tmp_path / "base"),
        "--out",
        str(tmp_path / "out"),
        "--idle-s",
        "2",
    )

    assert (code, err) == (0, "")
    merged = written(tmp_path / "out")
    expected_labels = {f"p{n}": "Shoes" if n % 2 == 0 else "Books" for n in range(30) if n not in (1, 3)}
    assert {k: v[1] for k, v in merged.items() if k.startswith("p")} == expected_labels
    assert {k: merged[k][0] for k in base_splits if k in merged} == {
        k: base_splits[k] for k in base_splits if k in merged
    }
    description = orjson.loads((tmp_path / "out" / "dataset.json").read_bytes())["labels_topic"]
    assert (description["records"], description["unreadable"], description["refused"]) == (
        48,
        1,
        {"Garden": 1, "Toys": 1},
    )


def test_an_unknown_topic_is_one_line_naming_it(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        capsys,
        "dataset",
        "from-topic",
        "--labels-topic",
        "no-such-labels-topic",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--out",
        str(tmp_path / "out"),
        "--idle-s",
        "1",
    )
    assert code == 1 and err.startswith("prodcat: error: cannot read") and err.count("\n") == 1
