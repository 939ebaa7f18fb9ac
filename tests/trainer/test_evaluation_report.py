"""`prodcat evaluate`: numbers that agree with scikit-learn, and the three report files."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import orjson
import pytest
from sklearn import metrics as sk

from prodcat.errors import CheckpointError
from prodcat.model.loading import load_model
from prodcat.trainer.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    per_class,
)
from prodcat.trainer.records import LabeledTitle, read_jsonl, write_jsonl
from prodcat.trainer.report import CONFUSION_PNG, REPORT_JSON, REPORT_MD, evaluate_checkpoint

LABELS = ["Automotive", "Baby", "Books", "Clothing", "Jewelry", "Shoes"]


def random_predictions(seed: int, never_predicted: str | None = None) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    truth = [rng.choice(LABELS) for _ in range(300)]
    guesses = [label for label in LABELS if label != never_predicted]
    predicted = [t if rng.random() < 0.6 and t != never_predicted else rng.choice(guesses) for t in truth]
    return truth, predicted


@pytest.mark.parametrize(("seed", "never_predicted"), [(0, None), (1, None), (2, "Baby")])
def test_metrics_equal_scikit_learns(seed: int, never_predicted: str | None) -> None:
    truth, predicted = random_predictions(seed, never_predicted)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        truth, predicted, labels=LABELS, zero_division=0
    )
    assert accuracy(truth, predicted) == pytest.approx(sk.accuracy_score(truth, predicted))
    assert macro_f1(truth, predicted, LABELS) == pytest.approx(
        sk.f1_score(truth, predicted, labels=LABELS, average="macro", zero_division=0)
    )
    scores = per_class(truth, predicted, LABELS)
    for i, label in enumerate(LABELS):
        assert (scores[label].precision, scores[label].recall, scores[label].f1) == pytest.approx(
            (precision[i], recall[i], f1[i])
        )
        assert scores[label].support == support[i]
    assert (
        confusion_matrix(truth, predicted, LABELS)
        == sk.confusion_matrix(truth, predicted, labels=LABELS).tolist()
    )


def test_expected_calibration_error_matches_a_hand_computation() -> None:
    # Two bins used: (0.2667, 0.3333] holds 0.3 (wrong) and (0.8667, 0.9333] holds 0.9, 0.9 (right, wrong).
    confidences = [0.3, 0.9, 0.9]
    correct = [False, True, False]
    expected = 1 / 3 * abs(0.3 - 0.0) + 2 / 3 * abs(0.9 - 0.5)
    assert expected_calibration_error(confidences, correct) == pytest.approx(expected)


def test_expected_calibration_error_is_zero_when_confidence_equals_accuracy() -> None:
    confidences = [0.75] * 4
    correct = [True, True, True, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    records = [*read_jsonl(corpus)[:300], LabeledTitle("Hozelock Garden Hose 25m", "Garden")]
    path = tmp_path_factory.mktemp("held-out") / "held_out.jsonl"
    write_jsonl(records, path)
    return path


def test_the_report_equals_scikit_learn_on_the_checkpoints_own_predictions(
    trained_registry: Path, held_out: Path, tmp_path: Path
) -> None:
    report = evaluate_checkpoint(trained_registry, held_out, out_dir=tmp_path, device="cpu", progress=False)

    records = [r for r in read_jsonl(held_out) if r.category in LABELS]
    predictions = load_model(trained_registry, device="cpu", min_agreement=0.9).predict(
        [r.title for r in records], top_k=1
    )
    truth, predicted = [r.category for r in records], [p.label for p in predictions]
    assert report.accuracy == pytest.approx(sk.accuracy_score(truth, predicted))
    assert report.macro_f1 == pytest.approx(
        sk.f1_score(truth, predicted, labels=LABELS, average="macro", zero_division=0)
    )
    assert report.confusion_matrix == sk.confusion_matrix(truth, predicted, labels=LABELS).tolist()


def test_the_report_is_written_as_json_markdown_and_png(
    trained_registry: Path, held_out: Path, tmp_path: Path
) -> None:
    report = evaluate_checkpoint(trained_registry, held_out, out_dir=tmp_path, device="cpu", progress=False)
    assert orjson.loads((tmp_path / REPORT_JSON).read_bytes())["macro_f1"] == report.macro_f1
    assert f"| {report.accuracy:.4f} |" in (tmp_path / REPORT_MD).read_text()
    assert (tmp_path / CONFUSION_PNG).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_records_outside_the_models_labels_are_skipped_and_counted(
    trained_registry: Path, held_out: Path, tmp_path: Path
) -> None:
    report = evaluate_checkpoint(trained_registry, held_out, out_dir=tmp_path, device="cpu", progress=False)
    assert report.skipped_unknown_label == 1
    assert report.examples == 300


def test_a_corrupt_checkpoint_is_refused(trained_registry: Path, held_out: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained_registry, registry)
    weights = next(registry.glob("*/*/model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"model\.safetensors fails its sha256 check"):
        evaluate_checkpoint(registry, held_out, out_dir=tmp_path / "out", device="cpu", progress=False)
