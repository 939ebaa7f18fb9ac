"""Real product titles: the tiny Qwen3 classifier against TF-IDF + logistic regression.

Both are trained on the same stratified split of ../shared/data/product-titles/train.jsonl
and scored on the same held-out part, in one run, side by side:

    .venv/bin/python -m bench.train_real_titles --update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.report import record_result
from prodcat.model.loading import load_model
from prodcat.trainer.data import split
from prodcat.trainer.metrics import accuracy, macro_f1, per_class
from prodcat.trainer.records import LabeledTitle, read_jsonl, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainConfig, train

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/product-titles/train.jsonl"
SECTION = "train_real_titles"


@dataclass(frozen=True)
class Score:
    method: str
    macro_f1: float
    accuracy: float
    seconds: float
    f1_by_class: dict[str, float]


def score(method: str, truth: list[str], predicted: list[str], labels: list[str], seconds: float) -> Score:
    return Score(
        method=method,
        macro_f1=macro_f1(truth, predicted, labels),
        accuracy=accuracy(truth, predicted),
        seconds=seconds,
        f1_by_class={label: s.f1 for label, s in per_class(truth, predicted, labels).items()},
    )


def tfidf_baseline(train_set: list[LabeledTitle], test_set: list[LabeledTitle], labels: list[str]) -> Score:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    started = time.perf_counter()
    model = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, C=10.0),
    )
    model.fit([r.title for r in train_set], [r.category for r in train_set])
    predicted = list(model.predict([r.title for r in test_set]))
    return score(
        "TF-IDF + logistic regression",
        [r.category for r in test_set],
        predicted,
        labels,
        time.perf_counter() - started,
    )


def transformer(
    train_set: list[LabeledTitle],
    test_set: list[LabeledTitle],
    labels: list[str],
    args: argparse.Namespace,
    work: Path,
) -> Score:
    started = time.perf_counter()
    train_file = work / "train.jsonl"
    write_jsonl(train_set, train_file)
    base = build_tiny_base(
        train_file,
        work / "base",
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.hidden_size // 32,
        num_kv_heads=max(1, args.hidden_size // 64),
        intermediate_size=args.hidden_size * 2,
    )
    result = train(
        TrainConfig(
            data=train_file,
            base_model=str(base),
            registry=work / "registry",
            labels=tuple(labels),
            full_finetune=True,
            learning_rate=args.lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_length=args.max_length,
            validation_fraction=0.05,
            seed=args.seed,
        )
    )
    classifier = load_model(result.checkpoint, device="cpu", min_agreement=0.9)
    predicted: list[str] = []
    for start in range(0, len(test_set), 256):
        chunk = [r.title for r in test_set[start : start + 256]]
        predicted.extend(p.label for p in classifier.predict(chunk, top_k=1))
    method = (
        f"tiny Qwen3 ({args.layers} layers, hidden {args.hidden_size}), full fine-tune {args.epochs:g} epochs"
    )
    return score(method, [r.category for r in test_set], predicted, labels, time.perf_counter() - started)


def render(
    scores: list[Score], labels: list[str], args: argparse.Namespace, n_train: int, n_test: int
) -> str:
    baseline, model = scores
    lines = [
        f"Real product titles ({n_train} train / {n_test} test, stratified, seed {args.seed}); "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads.",
        "",
        "| method | macro-F1 | accuracy | train + predict s | "
        + " | ".join(f"F1 {label}" for label in labels)
        + " |",
        "|---|---|---|---|" + "---|" * len(labels),
    ]
    for s in scores:
        per = " | ".join(f"{s.f1_by_class[label]:.3f}" for label in labels)
        lines.append(f"| {s.method} | {s.macro_f1:.3f} | {s.accuracy:.3f} | {s.seconds:.0f} | {per} |")
    lines += [
        "",
        f"Ratio transformer / TF-IDF: macro-F1 {model.macro_f1 / baseline.macro_f1:.3f}, "
        f"accuracy {model.accuracy / baseline.accuracy:.3f}, time {model.seconds / baseline.seconds:.1f}x.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--update", type=Path, help="write the result table into this Markdown file")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"bench: {args.data} not found; this benchmark needs the shared real titles", file=sys.stderr)
        return 2

    records = read_jsonl(args.data)
    labels = sorted({r.category for r in records})
    train_set, test_set = split(records, validation_fraction=args.test_fraction, seed=args.seed)
    scores = [tfidf_baseline(train_set, test_set, labels)]
    with tempfile.TemporaryDirectory(prefix="bench-titles-") as work:
        scores.append(transformer(train_set, test_set, labels, args, Path(work)))
    text = render(scores, labels, args, len(train_set), len(test_set))
    print(text)
    if args.update:
        record_result(args.update, SECTION, "python -m bench.train_real_titles", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
