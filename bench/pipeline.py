"""The serving pipeline, measured: overlap, padding, Kafka-path cost, processes, a real model shape.

    python -m bench.pipeline --update BENCHMARKS.md

1. Overlap on a simulated device: a stand-in model that sleeps a fixed time per batch
   (releasing the GIL, as a GPU kernel wait does) at several device rates, through the
   real service and broker, beside the old sequential loop (the batch run on the Kafka
   thread). Overlap efficiency = end to end / min(Kafka path alone, device alone).
2. Padding: padded / real tokens of the engine's batches beside fixed arrival-order
   batches of 32, at full load and at lower loads where --max-wait-ms cuts the window.
3. Kafka path vs a bare client: the service with a no-op model against a minimal
   confluent-kafka consume -> produce -> commit loop on the same events.
4. Processes: `prodcat consume --processes N` against one process, tiny model.
5. A real model shape (Qwen3-Embedding-0.6B's config, random weights) on this machine's
   device (CUDA when one answers and --device allows): the engine against the reference recipe.
6. Latency: p50/p99 end to end at steady arrival rates (50 and 200 events/s), tiny
   trained model, beside the floor of one forward pass plus two broker hops.

Passes compared with each other run alternately, `--repeats` times, and report medians.

Real titles from ../shared/data when present, else the sample corpus; the broker named by
KAFKA_BOOTSTRAP_SERVERS, else the embedded one. Every section prints the command that
reproduces it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import torch

from bench import latency, padding
from bench.context import Context, events_flags
from bench.corpus import (
    MAX_LENGTH,
    QWEN3_TOKENIZER,
    REAL_TITLES,
    cycle,
    load_titles,
    load_tokenizer,
    raw_events,
)
from bench.model_shape import compare
from bench.processes import cli_pass, consume_command, shown
from bench.report import record_result
from bench.stand_in import SimulatedDevice
from bench.streams import Pass
from bench.throughput import kafka_section, overlap, parse_rates
from prodcat.broker import EmbeddedBroker
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.consumer.batcher import BatchLimits
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.logs import configure_logging
from prodcat.model.loading import load_model
from prodcat.scratch import scratch_settings
from prodcat.trainer.sample_corpus import generate, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainConfig, train

SECTION = "pipeline"
SECTIONS = ("overlap", "padding", "kafka", "processes", "shape", "latency")
# Arrival rates at which the padding of a window cut by --max-wait-ms is shown.
LOW_LOADS = (500.0, 2_000.0, 10_000.0)


def padding_section(ctx: Context, measured: SimulatedDevice) -> list[str]:
    args = ctx.args
    limits = BatchLimits(max_items=args.max_batch_size, max_wait_s=args.max_wait_ms / 1000.0)
    lengths = [len(ids) for ids in measured.encode(ctx.titles)]
    reference = padding.ratio(padding.reference_batches(lengths))
    lines = [
        f"### 2. Padding ({ctx.tokenizer.name} tokenizer, {ctx.source})",
        "",
        f"Command: `{ctx.command('padding', *events_flags(args))}`",
        "",
        f"Padded / real tokens over {len(lengths)} titles (mean {sum(lengths) / len(lengths):.1f} "
        f"tokens, truncated at {MAX_LENGTH}); reference: fixed batches of {padding.REFERENCE_BATCH} "
        "in arrival order.",
        "",
        "| load | window | engine | reference (32, arrival order) |",
        "|---|---|---|---|",
    ]
    if measured.batches:
        engine = padding.ratio(padding.rows_of(measured.batches))
        lines.append(
            f"| full, measured: the service's batches in the warm-up pass | up to {limits.window_items} | "
            f"**{engine:.2f}** | {reference:.2f} |"
        )
    full = padding.ratio(padding.engine_batches(lengths, limits, limits.window_items))
    lines.append(f"| full (window fills) | {limits.window_items} | **{full:.2f}** | {reference:.2f} |")
    for rate in LOW_LOADS:
        window = padding.window_at(rate, limits)
        low = padding.ratio(padding.engine_batches(lengths, limits, window))
        lines.append(
            f"| {rate:,.0f} titles/s (window cut by --max-wait-ms {args.max_wait_ms:g}) | {window} | "
            f"{low:.2f} | {reference:.2f} |"
        )
    return lines


def latency_section(ctx: Context) -> list[str]:
    args = ctx.args
    registry = args.registry or tiny_registry(ctx.work)
    model = load_model(registry, device="cpu", min_agreement=0.0)
    titles = ctx.titles[: args.latency_events]
    rows = []
    for rate in parse_rates(args.latency_rates):
        settings = fresh_settings(ctx)
        rows.append(latency.paced(settings, model, titles, rate, args.partitions))
    floor_settings = fresh_settings(ctx)
    forward = latency.forward_pass_ms(model, titles[0])
    hop = latency.hop_ms(floor_settings, floor_settings.dead_letter_topic)
    lines = [
        "### 6. End-to-end latency at a steady rate (tiny trained model, CPU)",
        "",
        f"Command: `{ctx.command('latency', *latency_flags(args))}`",
        "",
        f"{len(titles)} events per rate, produced one at a time at a fixed pace; end to end = the enriched "
        "event read back minus its send time (both Kafka hops included).",
        "",
        "| events/s | p50 ms | p99 ms |",
        "|---|---|---|",
    ]
    lines += [f"| {row.rate:g} | **{row.p50_ms:.1f}** | {row.p99_ms:.1f} |" for row in rows]
    lines += [
        "",
        f"Floor: one forward pass of one title {forward:.1f} ms + two broker hops of {hop:.1f} ms "
        f"= {forward + 2 * hop:.1f} ms.",
    ]
    return lines


def latency_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--latency-events {args.latency_events}",
        f"--latency-rates {args.latency_rates}",
        f"--max-wait-ms {args.max_wait_ms:g}",
    ]


def fresh_settings(ctx: Context) -> ConsumerSettings:
    """Fresh, empty topics on the benchmark's broker."""
    return scratch_settings(ctx.bootstrap, "latency", partitions=ctx.args.partitions, reload_interval_s=0)


def processes_section(ctx: Context) -> list[str]:
    args = ctx.args
    registry = args.registry or tiny_registry(ctx.work)
    rows: list[tuple[int, Pass, str]] = []
    for count in (1, args.processes):
        settings = ctx.fresh_input()
        result = cli_pass(settings, registry, len(ctx.titles), count, timeout_s=args.process_timeout_s)
        rows.append((count, result, shown(consume_command(settings, registry, count))))
    single = rows[0][1].per_second
    lines = [
        f"### 4. Processes (tiny trained model, CPU, {args.partitions} partitions)",
        "",
        f"Command: `{ctx.command('processes', *events_flags(args), f'--processes {args.processes}')}`",
        "",
        "Timed from the first enriched event read back to the last; each member runs one torch thread.",
        "",
        "| processes | events/s | vs 1 | command |",
        "|---|---|---|---|",
    ]
    for count, result, command in rows:
        # Too few events arrive in a single read of the output topic, which cannot be timed.
        rate = f"{result.per_second:,.0f}" if result.seconds > 0 else "not timed"
        relative = f"{result.per_second / single:.2f}x" if single > 0 and result.seconds > 0 else "-"
        lines.append(f"| {count} | {rate} | {relative} | `{command}` |")
    return lines


def shape_section(ctx: Context) -> list[str]:
    args = ctx.args
    shape_dir: Path = args.shape_model
    if not (shape_dir / "config.json").is_file():
        return ["### 5. Model shape", "", f"Skipped: no config.json in {shape_dir}."]
    limits = BatchLimits(max_items=args.max_batch_size, max_wait_s=args.max_wait_ms / 1000.0)
    result = compare(shape_dir, ctx.titles[: args.shape_titles], device_choice=args.device, limits=limits)
    return [
        f"### 5. Model shape on {result.device} ({shape_dir.name}: {result.layers} layers, "
        f"hidden {result.hidden}, random weights, {result.dtype})",
        "",
        f"Command: `{ctx.command('shape', f'--shape-titles {args.shape_titles} --device {args.device}')}`",
        "",
        f"{result.titles} titles ({ctx.source}), the model side alone (no Kafka), "
        f"{torch.get_num_threads()} torch threads.",
        "",
        "| recipe | titles/s |",
        "|---|---|",
        f"| engine: exact lengths, sorted window, batches of up to {args.max_batch_size} | "
        f"{result.engine_per_s:,.1f} |",
        f"| reference: fixed batches of {padding.REFERENCE_BATCH} in arrival order, padded to the longest | "
        f"{result.reference_per_s:,.1f} |",
        "",
        f"Ratio engine / reference: **{result.ratio:.2f}**.",
    ]


def tiny_registry(work: Path) -> Path:
    """A registry with one tiny checkpoint trained on the sample corpus."""
    corpus = work / "corpus.jsonl"
    write_jsonl(generate(), corpus)
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
    train(config)
    return work / "registry"


def run(args: argparse.Namespace, bootstrap: str, work: Path) -> str:
    chosen = set(args.sections.split(","))
    loaded = load_titles(args.data)
    titles = cycle(loaded.titles, args.events)
    ctx = Context(
        args=args,
        bootstrap=bootstrap,
        work=work,
        tokenizer=load_tokenizer(work),
        titles=titles,
        source=loaded.source,
        values=raw_events(titles),
    )
    blocks: list[list[str]] = [
        [
            f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}; "
            f"broker: {'KAFKA_BOOTSTRAP_SERVERS' if kafka_bootstrap_from_env() else 'embedded Tansu'}.",
        ]
    ]
    # Untimed: the first pass of a process pays one-off costs (imports, the tokenizer's first
    # calls, the broker's first topics); its batches are the engine's at full load.
    measured = ctx.device(0.0)
    if chosen & {"overlap", "padding", "kafka"}:
        ctx.service(measured, sequential=False)
    steps: list[tuple[str, Callable[[], list[str]]]] = [
        ("overlap", lambda: overlap(ctx)),
        ("padding", lambda: padding_section(ctx, measured)),
        ("kafka", lambda: kafka_section(ctx)),
        ("processes", lambda: processes_section(ctx)),
        ("shape", lambda: shape_section(ctx)),
        ("latency", lambda: latency_section(ctx)),
    ]
    for name, step in steps:
        if name in chosen:
            block = step()
            print("\n".join(block), end="\n\n", flush=True)
            blocks.append(block)
    return "\n\n".join("\n".join(block) for block in blocks)


def sections(text: str) -> str:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}; not {', '.join(unknown)}")
    return ",".join(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", type=sections, default=",".join(SECTIONS))
    parser.add_argument("--events", type=int, default=20_000, help="events per Kafka pass")
    parser.add_argument("--rates", default="5000,20000,50000", help="simulated device rates, titles/s")
    parser.add_argument("--repeats", type=int, default=3, help="alternating passes per figure (median)")
    parser.add_argument("--latency-events", type=int, default=500, help="events per latency rate")
    parser.add_argument("--latency-rates", default="50,200", help="arrival rates of the latency section")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--data", type=Path, default=REAL_TITLES, help="titles (JSON lines)")
    parser.add_argument("--registry", type=Path, help="tiny checkpoint registry for sections 4 and 6")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--process-timeout-s", type=float, default=300.0)
    parser.add_argument("--shape-model", type=Path, default=QWEN3_TOKENIZER, help="config + tokenizer")
    parser.add_argument("--shape-titles", type=int, default=256)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--update", type=Path, help="write the results into this Markdown file")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    with ExitStack() as stack:
        bootstrap = kafka_bootstrap_from_env() or stack.enter_context(EmbeddedBroker()).bootstrap_servers
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        text = run(args, bootstrap, work)
    if args.update:
        record_result(args.update, SECTION, "python -m bench.pipeline", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
