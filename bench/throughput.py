"""Sections 1 and 3 of the pipeline benchmark: overlap on a simulated device, the Kafka path.

Passes that are compared run alternately, `--repeats` times each, and each figure is
the median of its passes: the machine is shared, and a pass measured once, apart from
the one it is compared with, can land in a quiet or a busy moment.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

from bench.context import Context, events_flags
from bench.corpus import MAX_LENGTH
from bench.costs import measure
from bench.stand_in import SimulatedDevice
from bench.streams import bare_client_pass

TOP_K = 3
POOL_THREADS = (1, 2)


def median_rates(passes: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Each pass's median events/s over `repeats` rounds, the passes alternating within a round."""
    rates: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def rates_flags(args: argparse.Namespace) -> list[str]:
    return [f"--rates {args.rates}", f"--repeats {args.repeats}"]


def parse_rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def engine_pass(
    ctx: Context, rate: float, device_rates: list[float], *, sequential: bool
) -> Callable[[], float]:
    """A pass on a device of `rate`, noting the device's own rate on the pass's batches."""

    def run() -> float:
        model = SimulatedDevice.at_rate(
            ctx.tokenizer.tokenizer,
            titles_per_s=rate,
            max_batch_size=ctx.args.max_batch_size,
            max_length=MAX_LENGTH,
        )
        result = ctx.service(model, sequential=sequential)
        device_rates.append(model.replay_rate(TOP_K))
        return result.per_second

    return run


def overlap(ctx: Context) -> list[str]:
    args = ctx.args
    lines = [
        f"### 1. Overlap on a simulated device ({ctx.tokenizer.name} tokenizer, {ctx.source})",
        "",
        f"Command: `{ctx.command('overlap', *events_flags(args), *rates_flags(args))}`",
        "",
        f"{len(ctx.titles)} events per pass; the stand-in sleeps max_batch_size / rate = "
        f"{args.max_batch_size} / rate seconds per batch, whatever the batch holds. For each rate the "
        f"Kafka path alone (no-op model), the overlapped engine and the sequential loop run alternately, "
        f"{args.repeats} times each; every figure is the median of its passes. Device alone replays each "
        "pass's own batches back to back.",
        "",
        "| device rate | loop | end to end events/s | Kafka path alone | device alone | overlap efficiency |",
        "|---|---|---|---|---|---|",
    ]
    for rate in parse_rates(args.rates):
        devices: dict[str, list[float]] = {"overlapped": [], "sequential": []}
        medians = median_rates(
            {
                "kafka": lambda: ctx.service(ctx.device(0.0), sequential=False).per_second,
                "overlapped": engine_pass(ctx, rate, devices["overlapped"], sequential=False),
                "sequential": engine_pass(ctx, rate, devices["sequential"], sequential=True),
            },
            args.repeats,
        )
        for name, loop in (("overlapped", "overlapped (engine v3)"), ("sequential", "sequential (old loop)")):
            device_alone = statistics.median(devices[name])
            bound = min(medians["kafka"], device_alone)
            efficiency = medians[name] / bound if bound > 0 else 0.0
            lines.append(
                f"| {rate:,.0f}/s | {loop} | {medians[name]:,.0f} | {medians['kafka']:,.0f} | "
                f"{device_alone:,.0f} | **{efficiency:.2f}** |"
            )
    return lines


def service_rate(ctx: Context, *, tokenizer_threads: int) -> Callable[[], float]:
    """A pass of the service with a no-op model, with the tokenizer stage as given."""
    return lambda: (
        ctx.service(ctx.device(0.0), sequential=False, tokenizer_threads=tokenizer_threads).per_second
    )


def kafka_section(ctx: Context) -> list[str]:
    args = ctx.args
    passes: dict[str, Callable[[], float]] = {
        f"pool {threads}": service_rate(ctx, tokenizer_threads=threads) for threads in POOL_THREADS
    }
    passes["inline"] = service_rate(ctx, tokenizer_threads=0)
    passes["bare"] = lambda: bare_client_pass(ctx.fresh_input(), len(ctx.titles)).per_second
    medians = median_rates(passes, args.repeats)
    costs = measure(ctx.fresh_input(), ctx.device(0.0), ctx.values, ctx.titles)
    bare = medians["bare"]
    lines = [
        "### 3. Kafka path vs a bare client",
        "",
        f"Command: `{ctx.command('kafka', *events_flags(args), f'--repeats {args.repeats}')}`",
        "",
        f"{len(ctx.titles)} events, {args.partitions} partitions, first record to last acknowledged; "
        f"the passes alternate, median of {args.repeats} each.",
        "",
        "| loop | events/s | / bare client |",
        "|---|---|---|",
    ]
    for threads in POOL_THREADS:
        rate = medians[f"pool {threads}"]
        lines.append(
            f"| service, no-op model, tokenizer pool of {threads} (parse, validate, tokenize, batch, enrich, "
            f"produce, ack, commit) | {rate:,.0f} | **{rate / bare:.2f}** |"
        )
    lines += [
        f"| service, no-op model, tokenizing on the Kafka thread | {medians['inline']:,.0f} | "
        f"{medians['inline'] / bare:.2f} |",
        f"| bare confluent-kafka consume -> produce -> async commit | {bare:,.0f} | 1.00 |",
        "",
        "Kafka-thread CPU per event, each step alone on the same events (`bench/costs.py`), µs: "
        f"tokenize {costs.tokenize:.1f}, validate {costs.validate:.1f}, output {costs.output:.1f}, "
        f"produce {costs.produce:.1f}, ack {costs.ack:.1f}.",
    ]
    return lines
