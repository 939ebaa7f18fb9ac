"""Offers to train / validation / test splits, grouped by product cluster.

Offers of one cluster describe the same product; were they spread over two splits, the
test score would reward memorising products instead of categorising titles. So whole
clusters are assigned to splits, one label at a time, which keeps every split's class
mix close to the corpus's (approximate stratification).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from prodcat.errors import ConfigError
from prodcat.schemas.labels import DEFAULT_CATEGORIES
from prodcat.trainer.lspc import Offer, ReadStats
from prodcat.trainer.records import LabeledTitle

SPLITS = ("train", "validation", "test")
DATASET_FILE = "dataset.json"


@dataclass(frozen=True)
class BuildOptions:
    categories: tuple[str, ...] | None = DEFAULT_CATEGORIES
    """The label set; None with `top_k` picks the most frequent labels instead."""
    top_k: int | None = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.validation_fraction <= 0 or self.test_fraction <= 0:
            raise ConfigError("validation and test fractions must be positive")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError("validation and test fractions must leave room for training")
        if self.top_k is not None and self.top_k < 2:
            raise ConfigError("--top-k must be at least 2")


@dataclass
class BuiltDataset:
    labels: list[str]
    splits: dict[str, list[Offer]]
    duplicates_removed: int
    outside_labels: int
    options: BuildOptions
    stats: ReadStats = field(default_factory=ReadStats)


def select_labels(counts: Counter[str], options: BuildOptions) -> list[str]:
    if options.top_k is not None:
        return sorted(label for label, _ in counts.most_common(options.top_k))
    return list(options.categories or DEFAULT_CATEGORIES)


def deduplicate(offers: Sequence[Offer]) -> tuple[list[Offer], int]:
    """Drops offers whose text repeats one already seen in the same cluster (case-insensitive);
    returns the kept offers and how many were dropped."""
    seen: set[tuple[str, str]] = set()
    kept: list[Offer] = []
    for offer in offers:
        key = (offer.cluster_id, offer.text.casefold())
        if key not in seen:
            seen.add(key)
            kept.append(offer)
    return kept, len(offers) - len(kept)


def grouped_split(offers: Sequence[Offer], options: BuildOptions) -> dict[str, list[Offer]]:
    """Whole clusters to splits, per label, each to the split furthest below its target share."""
    targets = {
        "train": 1 - options.validation_fraction - options.test_fraction,
        "validation": options.validation_fraction,
        "test": options.test_fraction,
    }
    clusters: dict[str, list[Offer]] = defaultdict(list)
    for offer in offers:
        clusters[offer.cluster_id].append(offer)
    by_label: dict[str, list[str]] = defaultdict(list)
    for cluster_id, members in clusters.items():
        # A cluster follows its majority label; ties go to the alphabetically first.
        label = min(Counter(o.category for o in members).most_common(), key=lambda kv: (-kv[1], kv[0]))[0]
        by_label[label].append(cluster_id)

    rng = random.Random(options.seed)
    splits: dict[str, list[Offer]] = {name: [] for name in SPLITS}
    for label in sorted(by_label):
        cluster_ids = sorted(by_label[label])
        rng.shuffle(cluster_ids)
        assigned = dict.fromkeys(SPLITS, 0)
        total = sum(len(clusters[c]) for c in cluster_ids)
        for cluster_id in cluster_ids:
            name = max(SPLITS, key=lambda s: targets[s] * total - assigned[s])
            assigned[name] += len(clusters[cluster_id])
            splits[name].extend(clusters[cluster_id])
    for name in SPLITS:
        rng.shuffle(splits[name])
    return splits


def build_dataset(offers: Iterable[Offer], options: BuildOptions, stats: ReadStats) -> BuiltDataset:
    everything = list(offers)
    labels = select_labels(Counter(o.category for o in everything), options)
    wanted = set(labels)
    in_labels = [o for o in everything if o.category in wanted]
    unique, duplicates = deduplicate(in_labels)
    if not unique:
        raise ConfigError(f"no offers in the label set {', '.join(labels)}")
    return BuiltDataset(
        labels=labels,
        splits=grouped_split(unique, options),
        duplicates_removed=duplicates,
        outside_labels=len(everything) - len(in_labels),
        options=options,
        stats=stats,
    )


def summary(built: BuiltDataset) -> dict[str, Any]:
    return {
        "labels": built.labels,
        "splits": {
            name: {
                "total": len(offers),
                "per_class": dict(sorted(Counter(o.category for o in offers).items())),
            }
            for name, offers in built.splits.items()
        },
        "clusters": {name: len({o.cluster_id for o in offers}) for name, offers in built.splits.items()},
        "read": {
            "lines": built.stats.lines,
            "members_read": built.stats.members_read,
            "members_skipped": built.stats.members_skipped,
            "skipped_lines": dict(sorted(built.stats.skipped.items())),
        },
        "outside_labels": built.outside_labels,
        "duplicates_removed": built.duplicates_removed,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(built.options).items()},
    }


def write_dataset(built: BuiltDataset, out_dir: Path) -> dict[str, Any]:
    # pyarrow (the `train` extra) only where Parquet is read or written: training on JSON lines,
    # as the test kit does, runs without it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, offers in built.splits.items():
        table = pa.table(
            {
                "text": [o.text for o in offers],
                "category": [o.category for o in offers],
                "cluster_id": [o.cluster_id for o in offers],
            }
        )
        pq.write_table(table, out_dir / f"{name}.parquet")
    report = summary(built)
    (out_dir / DATASET_FILE).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


def is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and (path / DATASET_FILE).is_file()


def load_split(out_dir: Path, split: str) -> list[LabeledTitle]:
    path = out_dir / f"{split}.parquet"
    if not path.is_file():
        raise ConfigError(f"{out_dir} has no {split} split ({path.name} missing)")
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["text", "category"])
    return [
        LabeledTitle(title=text, category=category)
        for text, category in zip(table["text"].to_pylist(), table["category"].to_pylist(), strict=True)
    ]
