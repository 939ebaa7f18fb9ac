"""Labels from the labels topic into a training dataset, merged with a base dataset.

The latest label of each product id wins (the topic is keyed by id, so one partition holds
all of an id's labels, in order). A label outside the label set is refused and counted.

The merge keeps ids out of two splits: an id that is a product (cluster) of the base keeps
that product's split, and all its base titles take the new label, since one product has one
category (or leave the dataset, when its latest label is outside the set); a new id goes
to a split chosen from a hash of the id, so the same id lands in the same split in every
build, whichever labels came with it and in whatever order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from pydantic import ValidationError

from prodcat.errors import ConfigError
from prodcat.schemas.labels import LabelEvent
from prodcat.trainer.dataset_build import (
    DATASET_FILE,
    SPLITS,
    BuildOptions,
    BuiltDataset,
    is_dataset_dir,
    write_dataset,
)
from prodcat.trainer.lspc import Offer, ReadStats, normalise

LABELS_SECTION = "labels_topic"


@dataclass(frozen=True)
class BaseDataset:
    directory: Path
    labels: list[str]
    splits: dict[str, list[Offer]]
    validation_fraction: float
    test_fraction: float


@dataclass
class LabelsReport:
    records: int = 0
    unreadable: int = 0
    superseded: int = 0
    """Labels replaced by a later label for the same id."""
    refused: Counter[str] = field(default_factory=Counter)
    """Ids whose latest label is outside the label set, by that label."""
    ids: int = 0
    """Ids whose latest label is in the label set."""
    added: int = 0
    """Titles added to the dataset."""
    already_present: int = 0
    blank_titles: int = 0
    """Labelled titles with no text once normalised."""
    """Labelled titles the base already holds for the same product."""
    relabelled: int = 0
    """Base titles whose product's label changed."""
    dropped: int = 0
    """Base titles whose product's latest label is outside the label set."""
    new_ids: Counter[str] = field(default_factory=Counter)
    """Ids the base did not hold, by the split they went to."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "unreadable": self.unreadable,
            "superseded": self.superseded,
            "refused": dict(sorted(self.refused.items())),
            "ids": self.ids,
            "added": self.added,
            "already_present": self.already_present,
            "blank_titles": self.blank_titles,
            "relabelled": self.relabelled,
            "dropped": self.dropped,
            "new_ids": {name: self.new_ids[name] for name in SPLITS},
        }


def latest_labels(values: Iterable[bytes | None], report: LabelsReport) -> dict[str, LabelEvent]:
    """Each id's last label event, in topic order; records that are not label events are counted."""
    latest: dict[str, LabelEvent] = {}
    for value in values:
        report.records += 1
        try:
            event = LabelEvent.model_validate_json(value or b"")
        except ValidationError:
            report.unreadable += 1
            continue
        if event.id in latest:
            report.superseded += 1
            # Re-inserted, so the dict's order is that of each id's latest label.
            del latest[event.id]
        latest[event.id] = event
    return latest


def hash_split(product_id: str, *, validation_fraction: float, test_fraction: float) -> str:
    """A split for a product id, fixed by the id alone: its sha256 read as a number in [0, 1)."""
    point = int.from_bytes(hashlib.sha256(product_id.encode()).digest()[:8], "big") / 2**64
    if point < test_fraction:
        return "test"
    if point < test_fraction + validation_fraction:
        return "validation"
    return "train"


def merge_labels(
    events: dict[str, LabelEvent],
    *,
    labels: Sequence[str],
    base: BaseDataset | None,
    validation_fraction: float,
    test_fraction: float,
    report: LabelsReport,
) -> dict[str, list[Offer]]:
    """The base's splits with the labelled ids merged in (see the module's docstring)."""
    wanted = set(labels)
    accepted: dict[str, LabelEvent] = {}
    withdrawn: set[str] = set()
    for product_id, event in events.items():
        if event.label in wanted:
            accepted[product_id] = event
        else:
            report.refused[event.label] += 1
            withdrawn.add(product_id)
    report.ids = len(accepted)

    splits: dict[str, list[Offer]] = {name: [] for name in SPLITS}
    split_of: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for name, offers in (base.splits if base else {}).items():
        for offer in offers:
            if offer.cluster_id in withdrawn:
                report.dropped += 1
                continue
            split_of.setdefault(offer.cluster_id, name)
            correction = accepted.get(offer.cluster_id)
            if correction is not None and correction.label != offer.category:
                offer = Offer(text=offer.text, category=correction.label, cluster_id=offer.cluster_id)
                report.relabelled += 1
            splits[name].append(offer)
            seen.add((offer.cluster_id, offer.text.casefold()))

    for product_id, event in accepted.items():
        text = normalise(event.title)
        if not text:
            # Only HTML whitespace (`&nbsp;`): nothing to train on, but the label still counted
            # for the product's base titles above.
            report.blank_titles += 1
            continue
        if (product_id, text.casefold()) in seen:
            report.already_present += 1
            continue
        split = split_of.get(product_id)
        if split is None:
            split = hash_split(
                product_id, validation_fraction=validation_fraction, test_fraction=test_fraction
            )
            report.new_ids[split] += 1
        splits[split].append(Offer(text=text, category=event.label, cluster_id=product_id))
        report.added += 1
    return splits


def load_base(directory: Path) -> BaseDataset:
    """A dataset directory from `prodcat dataset build` (or from this module)."""
    if not is_dataset_dir(directory):
        raise ConfigError(f"{directory} is not a dataset directory (no {DATASET_FILE})")
    try:
        description = orjson.loads((directory / DATASET_FILE).read_bytes())
        labels = [str(label) for label in description["labels"]]
        options = description["options"]
        validation_fraction, test_fraction = (
            float(options["validation_fraction"]),
            float(options["test_fraction"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{directory / DATASET_FILE} does not describe a dataset: {exc}") from None
    splits: dict[str, list[Offer]] = {}
    for name in SPLITS:
        path = directory / f"{name}.parquet"
        if not path.is_file():
            raise ConfigError(f"{directory} has no {name} split ({path.name} missing)")
        table = pq.read_table(path, columns=["text", "category", "cluster_id"])
        splits[name] = [
            Offer(text=text, category=category, cluster_id=cluster)
            for text, category, cluster in zip(
                table["text"].to_pylist(),
                table["category"].to_pylist(),
                table["cluster_id"].to_pylist(),
                strict=True,
            )
        ]
    return BaseDataset(directory, labels, splits, validation_fraction, test_fraction)


def build_from_labels(
    values: Iterable[bytes | None],
    out_dir: Path,
    *,
    base: BaseDataset | None,
    labels: Sequence[str],
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> dict[str, Any]:
    """Writes the merged dataset to `out_dir` (the `dataset build` format) and returns its
    description, whose `labels_topic` section tells what became of the labels.

    With a base, its label set and split fractions are used and the arguments ignored.
    """
    if base is not None:
        labels, validation_fraction, test_fraction = base.labels, base.validation_fraction, base.test_fraction
    options = BuildOptions(
        categories=tuple(labels), validation_fraction=validation_fraction, test_fraction=test_fraction
    )
    report = LabelsReport()
    events = latest_labels(values, report)
    splits = merge_labels(
        events,
        labels=labels,
        base=base,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        report=report,
    )
    if not any(splits.values()):
        raise ConfigError(
            f"no labelled titles to write: {report.records} records, {report.unreadable} unreadable, "
            f"{report.refused.total()} ids refused for labels outside {', '.join(labels)}"
        )
    built = BuiltDataset(
        labels=list(labels),
        splits=splits,
        duplicates_removed=report.already_present,
        outside_labels=report.refused.total(),
        options=options,
        stats=ReadStats(lines=report.records, skipped=Counter({"unreadable": report.unreadable})),
    )
    description = write_dataset(built, out_dir)
    description[LABELS_SECTION] = {"base": str(base.directory) if base else None, **report.as_dict()}
    (out_dir / DATASET_FILE).write_bytes(orjson.dumps(description, option=orjson.OPT_INDENT_2))
    return description
