"""What every section of the pipeline benchmark shares: arguments, broker, titles, events."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import MAX_LENGTH, BenchTokenizer
from bench.stand_in import SimulatedDevice
from bench.streams import Pass, fresh_input, service_pass
from prodcat.consumer.config import ConsumerSettings


@dataclass(frozen=True, slots=True)
class Context:
    args: argparse.Namespace
    bootstrap: str
    work: Path
    tokenizer: BenchTokenizer
    titles: list[str]
    source: str
    values: list[bytes]

    def service(self, model: SimulatedDevice, *, sequential: bool, **overrides: Any) -> Pass:
        return service_pass(self.fresh_input(**overrides), model, len(self.titles), sequential=sequential)

    def fresh_input(self, **overrides: Any) -> ConsumerSettings:
        """Settings on fresh topics, the input holding this run's events."""
        args = self.args
        return fresh_input(
            self.bootstrap,
            self.values,
            partitions=args.partitions,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            **overrides,
        )

    def device(self, seconds_per_batch: float) -> SimulatedDevice:
        return SimulatedDevice(
            self.tokenizer.tokenizer, seconds_per_batch=seconds_per_batch, max_length=MAX_LENGTH
        )

    def command(self, section: str, *flags: str) -> str:
        return " ".join(["python -m bench.pipeline --sections", section, *flags])


def events_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--events {args.events}",
        f"--partitions {args.partitions}",
        f"--max-batch-size {args.max_batch_size}",
        f"--max-wait-ms {args.max_wait_ms:g}",
    ]
