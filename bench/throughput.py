"""Where the time goes: the Kafka path against the model, measured in one run.

1. Streams N real titles through the whole service (embedded broker unless
   KAFKA_BOOTSTRAP_SERVERS is set, tiny trained checkpoint) and splits the wall time
   into forward passes and everything else (poll, parse, validate, batch, produce,
   acknowledge, commit): each part's capacity in events/s.
2. Times forward passes of the real Qwen3-Embedding-0.6B architecture (random
   weights, the real tokenizer, from ../shared/data/qwen3-tokenizer) on this
   machine's device: fp16 on CUDA, fp32 on CPU.

    .venv/bin/python -m bench.throughput --update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from bench.report import record_result
from prodcat.broker import EmbeddedBroker
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.consumer.classify.runtime import Classifier, pick_device, serving_dtype
from prodcat.consumer.service import CategorizerService
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.trainer.records import read_jsonl
from prodcat.trainer.sample_corpus import generate, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainConfig, train

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data"
SECTION = "throughput"


def titles(count: int) -> list[str]:
    real = SHARED / "product-titles/train.jsonl"
    pool = (
        [r.title for r in read_jsonl(real)] if real.is_file() else [r.title for r in generate(per_class=400)]
    )
    return [pool[n % len(pool)] for n in range(count)]


def tiny_checkpoint(work: Path) -> Path:
    corpus = work / "corpus.jsonl"
    write_jsonl(generate(per_class=400), corpus)
    base = build_tiny_base(corpus, work / "base")
    config = TrainConfig(
        data=corpus,
        base_model=str(base),
        registry=work / "registry",
        full_finetune=True,
        learning_rate=1e-3,
        epochs=1.0,
        progress=False,
    )
    return train(config).checkpoint


def stream(events: int, batch_size: int, work: Path) -> dict[str, float]:
    checkpoint = tiny_checkpoint(work)
    with ExitStack() as stack:
        bootstrap = kafka_bootstrap_from_env() or stack.enter_context(EmbeddedBroker()).bootstrap_servers
        settings = scratch_settings(
            bootstrap, "bench", partitions=6, registry=checkpoint, max_batch_size=batch_size
        )
        values = [
            orjson.dumps({"id": f"b-{n}", "title": t, "price": 9.99}) for n, t in enumerate(titles(events))
        ]
        produce_values(values, settings, timeout_s=120)
        classifier = Classifier.load(checkpoint)
        service = CategorizerService(settings, classifier)
        summary = service.run(until_records=events)
        inference = service.metrics.inference_seconds
    rest = summary.seconds - inference
    return {
        "events": events,
        "seconds": summary.seconds,
        "end_to_end": summary.per_second,
        "kafka_path": events / rest if rest > 0 else float("inf"),
        "tiny_model": events / inference if inference > 0 else float("inf"),
    }


@dataclass(frozen=True)
class ForwardRate:
    titles_per_s: float
    tokens_per_title: float
    device: str
    dtype: str
    batch_size: int


def qwen3_06b(batch_size: int, batches: int) -> ForwardRate | None:
    tokenizer_dir = SHARED / "qwen3-tokenizer"
    if not tokenizer_dir.is_dir():
        return None
    device = pick_device("auto")
    dtype = serving_dtype(device)
    config = AutoConfig.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    model = (
        ProductClassifier(AutoModel.from_config(config), num_labels=6).to(device=device, dtype=dtype).eval()
    )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    sample = titles(batch_size * (batches + 1))
    chunks = [sample[n * batch_size : (n + 1) * batch_size] for n in range(batches + 1)]
    tokens = 0
    with torch.inference_mode():
        # The first batch warms up kernels and allocators and is not timed.
        for n, chunk in enumerate(chunks):
            if n == 1:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            batch = encode(tokenizer, chunk, max_length=64).to(device)
            if n > 0:
                tokens += int(batch["attention_mask"].sum())
            model(batch["input_ids"], batch["attention_mask"])
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    return ForwardRate(
        titles_per_s=batch_size * batches / seconds,
        tokens_per_title=tokens / (batch_size * batches),
        device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        dtype=str(dtype).removeprefix("torch."),
        batch_size=batch_size,
    )


def render(flow: dict[str, float], big: ForwardRate | None) -> str:
    lines = [
        f"{int(flow['events'])} real titles through the service (embedded broker, tiny checkpoint, "
        f"{torch.get_num_threads()} torch threads):",
        "",
        "| part | events/s |",
        "|---|---|",
        f"| end to end | {flow['end_to_end']:,.0f} |",
        "| Kafka path alone (poll, parse, validate, batch, produce, ack, commit) "
        f"| {flow['kafka_path']:,.0f} |",
        f"| tiny model forward passes alone | {flow['tiny_model']:,.0f} |",
    ]
    if big is not None:
        lines += [
            "",
            "Qwen3-Embedding-0.6B architecture (random weights, real tokenizer), "
            f"{big.dtype} on {big.device}, "
            f"batch {big.batch_size}, {big.tokens_per_title:.1f} tokens/title: "
            f"**{big.titles_per_s:,.1f} titles/s**.",
            "",
            f"Ratio Kafka path / 0.6B model on this device: {flow['kafka_path'] / big.titles_per_s:,.0f}x.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--big-batch-size", type=int, default=64)
    parser.add_argument("--big-batches", type=int, default=3)
    parser.add_argument("--update", type=Path, help="write the result into this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as work:
        flow = stream(args.events, args.batch_size, Path(work))
    big = qwen3_06b(args.big_batch_size, args.big_batches)
    text = render(flow, big)
    print(text)
    if args.update:
        record_result(args.update, SECTION, "python -m bench.throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
