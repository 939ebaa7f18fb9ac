"""`prodcat evaluate`: a published checkpoint scored on labelled data, as the consumer serves it.

The checkpoint is loaded through the serving gate (checksums verified, golden set agreed,
same tokenization and dtype), so the numbers describe what production will do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.trainer.dataset_build import is_dataset_dir, load_split
from prodcat.trainer.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    per_class,
)
from prodcat.trainer.progress import progress as show_progress
from prodcat.trainer.records import LabeledTitle, read_jsonl

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CONFUSION_PNG = "confusion_matrix.png"


@dataclass(frozen=True)
class EvaluationReport:
    model_name: str
    version: str
    data: str
    examples: int
    skipped_unknown_label: int
    accuracy: float
    macro_f1: float
    expected_calibration_error: float
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    confusion_matrix: list[list[int]]


def read_examples(data: Path) -> list[LabeledTitle]:
    """The test split of a dataset directory, or every record of a JSON-lines file."""
    return load_split(data, "test") if is_dataset_dir(data) else read_jsonl(data)


def score(
    classifier: TorchModel, records: list[LabeledTitle], *, batch_size: int, progress: bool
) -> tuple[list[str], list[str], list[float]]:
    truth, predicted, confidence = [], [], []
    with show_progress("evaluating", unit=" titles", total=len(records), enabled=progress) as bar:
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            for record, prediction in zip(
                chunk, classifier.predict([r.title for r in chunk], top_k=1), strict=True
            ):
                truth.append(record.category)
                predicted.append(prediction.label)
                confidence.append(prediction.confidence)
            bar.update(len(chunk))
    return truth, predicted, confidence


def evaluate_checkpoint(
    checkpoint: Path | str,
    data: Path,
    *,
    out_dir: Path,
    model_name: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    progress: bool = True,
    min_agreement: float = 0.9,
) -> EvaluationReport:
    classifier = load_model(checkpoint, model_name=model_name, device=device, min_agreement=min_agreement)
    labels = list(classifier.labels)
    examples = read_examples(data)
    known = [r for r in examples if r.category in set(labels)]
    truth, predicted, confidence = score(classifier, known, batch_size=batch_size, progress=progress)
    report = EvaluationReport(
        model_name=classifier.model_name,
        version=classifier.version,
        data=str(data),
        examples=len(known),
        skipped_unknown_label=len(examples) - len(known),
        accuracy=accuracy(truth, predicted),
        macro_f1=macro_f1(truth, predicted, labels),
        expected_calibration_error=expected_calibration_error(
            confidence, [t == p for t, p in zip(truth, predicted, strict=True)]
        ),
        per_class={label: asdict(s) for label, s in per_class(truth, predicted, labels).items()},
        labels=labels,
        confusion_matrix=confusion_matrix(truth, predicted, labels),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).write_bytes(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2))
    (out_dir / REPORT_MD).write_text(render_markdown(report))
    plot_confusion_matrix(report, out_dir / CONFUSION_PNG)
    return report


def render_markdown(report: EvaluationReport) -> str:
    lines = [
        f"# Evaluation of {report.model_name} {report.version}",
        "",
        f"Data: `{report.data}` — {report.examples} examples"
        + (
            f" ({report.skipped_unknown_label} skipped: label not in the model)"
            if report.skipped_unknown_label
            else ""
        ),
        "",
        "| accuracy | macro-F1 | expected calibration error |",
        "|---|---|---|",
        f"| {report.accuracy:.4f} | {report.macro_f1:.4f} | {report.expected_calibration_error:.4f} |",
        "",
        "## Per class",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {int(s['support'])} |"
            for label, s in report.per_class.items()
        ),
        "",
        "## Confusion matrix (rows: true, columns: predicted)",
        "",
        "| | " + " | ".join(report.labels) + " |",
        "|---|" + "---|" * len(report.labels),
        *(
            f"| **{label}** | " + " | ".join(str(n) for n in row) + " |"
            for label, row in zip(report.labels, report.confusion_matrix, strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(report: EvaluationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.9 * len(report.labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    matrix: Any = report.confusion_matrix
    image = axes.imshow(matrix, cmap="Blues")
    ticks = range(len(report.labels))
    axes.set_xticks(ticks, report.labels, rotation=45, ha="right")
    axes.set_yticks(ticks, report.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{report.model_name} {report.version}")
    peak = max((max(row) for row in report.confusion_matrix), default=0)
    for i, row in enumerate(report.confusion_matrix):
        for j, count in enumerate(row):
            axes.text(
                j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black"
            )
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
