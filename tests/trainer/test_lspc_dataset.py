"""`prodcat dataset build`: LSPC-shaped archives to grouped, stratified splits."""

from __future__ import annotations

import gzip
import random
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from prodcat.errors import ConfigError
from prodcat.trainer.dataset_build import SPLITS, BuildOptions, build_dataset, load_split, write_dataset
from prodcat.trainer.lspc import ReadStats, TextOptions, read_catalogue, read_lspc, read_mapping

CLASSES = ("Automotive", "Baby", "Books", "Clothing", "Jewelry", "Shoes", "Garden")
NOUNS = {
    "Automotive": "Wiper Blade",
    "Baby": "Baby Bottle",
    "Books": "Paperback Novel",
    "Clothing": "Cotton T-Shirt",
    "Jewelry": "Silver Ring",
    "Shoes": "Running Shoe",
    "Garden": "Garden Hose",
}
MALFORMED = {
    "invalid_json": b'{"cluster_id": 1, "title": ',
    "missing_title": orjson.dumps({"cluster_id": 7, "category": "Books", "description": "no title"}),
    "missing_cluster_id": orjson.dumps({"title": "Orphan Offer", "category": "Books"}),
    "not_an_object": b'["a", "list"]',
}


@dataclass
class Archive:
    path: Path
    offers_by_class: Counter[str] = field(default_factory=Counter)
    """Distinct offers written, per class."""
    duplicates_by_class: Counter[str] = field(default_factory=Counter)
    """Repeats of an offer already written to the same cluster, per class."""


def offer(cluster: int, category: str, n: int) -> dict[str, object]:
    return {
        "url": f"https://shop{n % 5}.example/p/{cluster}-{n}",
        "nodeID": f"_:node{n}",
        "cluster_id": cluster,
        "category": category,
        "title": f"Acme &amp; Co {NOUNS[category]}  Model {cluster}-{n}",
        "description": f"A {NOUNS[category].lower()} for everyday use.",
        "brand": "Acme",
        "price": f"{10 + n % 90}.99",
        "identifiers": [{"/gtin13": [f"40{cluster:06d}{n:05d}"]}],
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    rng = random.Random(3)
    built = Archive(tmp_path_factory.mktemp("lspc") / "lspcV2020.zip")
    lines: list[bytes] = []
    cluster = 100
    for category in CLASSES:
        for _ in range(40 if category != "Garden" else 60):
            cluster += 1
            for n in range(rng.randint(1, 4)):
                lines.append(orjson.dumps(offer(cluster, category, n)))
                built.offers_by_class[category] += 1
            if cluster % 10 == 0:
                lines.append(orjson.dumps(offer(cluster, category, 0)))
                built.duplicates_by_class[category] += 1
    lines.extend(MALFORMED.values())
    rng.shuffle(lines)
    half = len(lines) // 2
    with zipfile.ZipFile(built.path, "w") as zf:
        zf.writestr("offers_part_0.json.gz", gzip.compress(b"\n".join(lines[:half]) + b"\n"))
        zf.writestr("offers_part_1.json", b"\n".join(lines[half:]) + b"\n")
        zf.writestr("README.txt", b"Large-Scale Product Corpus V2020")
    return built


def build(
    archive: Archive,
    out: Path,
    options: BuildOptions | None = None,
    *,
    mapping: dict[str, str] | None = None,
    text: TextOptions | None = None,
) -> dict[str, Any]:
    stats = ReadStats()
    options = options or BuildOptions()
    offers = read_lspc(archive.path, mapping=mapping, text=text or TextOptions(), stats=stats, progress=False)
    return write_dataset(build_dataset(offers, options, stats), out)


def test_no_cluster_appears_in_two_splits(archive: Archive, tmp_path: Path) -> None:
    build(archive, tmp_path)
    import pyarrow.parquet as pq

    clusters = {s: set(pq.read_table(tmp_path / f"{s}.parquet")["cluster_id"].to_pylist()) for s in SPLITS}
    assert not clusters["train"] & clusters["validation"]
    assert not clusters["train"] & clusters["test"]
    assert not clusters["validation"] & clusters["test"]


def test_each_split_keeps_the_corpus_class_mix(archive: Archive, tmp_path: Path) -> None:
    report = build(archive, tmp_path, BuildOptions(validation_fraction=0.2, test_fraction=0.2))
    corpus = Counter({c: n for c, n in archive.offers_by_class.items() if c != "Garden"})
    for name, share in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):
        for category, count in report["splits"][name]["per_class"].items():
            assert count == pytest.approx(share * corpus[category], abs=0.1 * corpus[category] + 4)


def test_dataset_json_counts_every_line_exactly(archive: Archive, tmp_path: Path) -> None:
    report = build(archive, tmp_path)
    six = [c for c in CLASSES if c != "Garden"]
    assert sum(report["splits"][s]["total"] for s in SPLITS) == sum(archive.offers_by_class[c] for c in six)
    assert report["duplicates_removed"] == sum(archive.duplicates_by_class[c] for c in six)
    assert (
        report["outside_labels"] == archive.offers_by_class["Garden"] + archive.duplicates_by_class["Garden"]
    )
    assert report["read"]["skipped_lines"] == dict.fromkeys(sorted(MALFORMED), 1)
    written = archive.offers_by_class.total() + archive.duplicates_by_class.total() + len(MALFORMED)
    assert report["read"]["lines"] == written
    assert report["read"]["members_skipped"] == ["README.txt"]


def test_duplicate_offers_within_a_cluster_are_removed(archive: Archive, tmp_path: Path) -> None:
    build(archive, tmp_path)
    rows = [(r.title, r.category) for s in SPLITS for r in load_split(tmp_path, s)]
    assert len(rows) == len(set(rows))


def test_html_entities_and_whitespace_are_normalised(archive: Archive, tmp_path: Path) -> None:
    build(archive, tmp_path)
    title = load_split(tmp_path, "train")[0].title
    assert title.startswith("Acme & Co ") and "  " not in title


def test_a_mapping_file_overrides_the_category_field(archive: Archive, tmp_path: Path) -> None:
    mapping_file = tmp_path / "map.tsv"
    rows = [f"{c}\tBooks" for c in range(101, 101 + 6 * 40 + 60)]
    mapping_file.write_text("cluster_id\tcategory\n" + "\n".join(rows) + "\n")
    report = build(archive, tmp_path / "out", mapping=read_mapping(mapping_file))
    assert set(report["splits"]["train"]["per_class"]) == {"Books"}


def test_top_k_picks_the_most_frequent_labels(archive: Archive, tmp_path: Path) -> None:
    report = build(archive, tmp_path, BuildOptions(categories=None, top_k=2))
    most_common = sorted(c for c, _ in archive.offers_by_class.most_common(2))
    assert report["labels"] == most_common


def test_title_and_description_mode_appends_the_description_and_truncates(
    archive: Archive, tmp_path: Path
) -> None:
    build(archive, tmp_path, text=TextOptions(mode="title+description", max_chars=60))
    records = load_split(tmp_path, "train")
    assert all(len(r.title) <= 60 for r in records)
    assert any(" for everyday" in r.title for r in records)


def test_the_same_seed_gives_the_same_split(archive: Archive, tmp_path: Path) -> None:
    build(archive, tmp_path / "a")
    build(archive, tmp_path / "b")
    assert load_split(tmp_path / "a", "test") == load_split(tmp_path / "b", "test")


def test_a_missing_archive_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lspcV2020\.zip does not exist"):
        list(read_lspc(tmp_path / "lspcV2020.zip", stats=ReadStats(), progress=False))


def test_a_file_that_is_not_a_zip_is_one_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "lspcV2020.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(ConfigError, match=r"^lspcV2020\.zip is not a zip archive$"):
        list(read_lspc(fake, stats=ReadStats(), progress=False))


def test_a_users_own_json_lines_become_a_dataset(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.jsonl"
    rows = [{"title": f"{NOUNS[c]} {n}", "category": c} for c in CLASSES[:6] for n in range(30)]
    catalogue.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n{broken\n")
    stats = ReadStats()
    built = build_dataset(read_catalogue(catalogue, stats=stats, progress=False), BuildOptions(), stats)
    report = write_dataset(built, tmp_path / "out")
    assert sum(report["splits"][s]["total"] for s in SPLITS) == 180
    assert report["read"]["skipped_lines"] == {"invalid_json": 1}


def test_a_single_gzipped_json_lines_file_is_read_like_an_archive_member(tmp_path: Path) -> None:
    path = tmp_path / "offers_corpus_english_v2.json.gz"
    rows = [offer(cluster, category, 0) for cluster, category in enumerate(CLASSES[:6] * 10, start=1)]
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in rows)))
    stats = ReadStats()
    offers = list(read_lspc(path, stats=stats, progress=False))
    assert len(offers) == 60 and stats.members_read == [path.name]


def test_a_damaged_member_is_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "lspc.zip"
    good = b"\n".join(orjson.dumps(offer(n, "Books", 0)) for n in range(1, 6))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.json.gz", gzip.compress(good)[:-12])
        zf.writestr("b.json", good)
    stats = ReadStats()
    offers = list(read_lspc(path, stats=stats, progress=False))
    assert stats.skipped["damaged_member"] == 1
    assert len(offers) >= 5
