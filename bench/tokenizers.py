"""Tokenizers side by side: titles/s and whether each gives the Hugging Face tokenizer's ids.

    python -m bench.tokenizers --update BENCHMARKS.md

(Run it as a module: as a script, this file would shadow the `tokenizers` package.)

Contenders, each fed the same titles in batches of --batch (a poll's worth), truncating at
--max-length with the end-of-text token appended, as the serving model encodes:

- HF `encode_batch`: the Rust tokenizer's batch call (what the transformers call runs on);
  the reference every other contender's ids are compared with.
- HF `encode_batch_fast`: the same without computing offsets; what `TorchModel.encode` runs.
- bpe-qwen (`QwenTokenizer.encode_batch_parallel`, Qwen vocabularies only, when installed):
  the end-of-text token and truncation added after it, as the HF post-processor does.
- the tokenizer pool (`consumer/tokenize_pool.py`) at each of --threads, running
  `encode_batch_fast`: every batch submitted, then every result collected; once with the
  caller waiting, once with the caller spinning a pure-Python loop meanwhile, as the Kafka
  thread would be polling and producing.

Each contender runs --repeats times, interleaved, and the median is reported. Beside titles/s:
the caller's time per title (the whole call inline; for the pool only `submit`), and, with
the caller busy, how fast its pure-Python loop runs while the pool works against that loop
alone: the share of its speed the Kafka thread keeps (0% inline: it is blocked). Ids are
compared on the bench titles and on a seeded probe of random multi-script strings (--probe),
where real traffic can differ from the corpus.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer

from bench.corpus import MAX_LENGTH, QWEN3_TOKENIZER, REAL_TITLES, load_titles, load_tokenizer
from bench.report import record_result
from prodcat.consumer.tokenize_pool import Tokenized, TokenizerPool
from prodcat.model.encode import model_text

SECTION = "tokenizer"
END_OF_TEXT = "<|endoftext|>"
# How long the caller's Python loop runs alone to give its speed.
SOLO_S = 0.5
# Unicode blocks titles come from: Latin, Greek, Cyrillic, Hebrew/Arabic, Devanagari (with its
# combining marks), Thai, kana, CJK, Hangul, emoji, general punctuation and spaces.
PROBE_BLOCKS = (
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x590, 0x6FF),
    (0x900, 0x97F),
    (0xE00, 0xE7F),
    (0x3040, 0x30FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0x1F300, 0x1F6FF),
    (0x2000, 0x206F),
)

Encode = Callable[[list[str]], list[list[int]]]


class BpeQwen(Protocol):
    def encode_batch_parallel(self, texts: list[str]) -> list[list[int]]: ...


@dataclass(frozen=True, slots=True)
class Timing:
    titles_per_s: float
    caller_us_per_title: float
    caller_python_share: float | None
    """The caller's pure-Python loop rate while tokenizing ÷ its rate alone; None: not measured."""


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    run: Callable[[list[list[str]]], tuple[list[list[int]], Timing]]


class RustEncoder:
    """The serving model's encoding with a bare Rust tokenizer: a `tokenize_pool.Encoder`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch_fast(list(titles))]


def inline(encode: Encode) -> Callable[[list[list[str]]], tuple[list[list[int]], Timing]]:
    def run(batches: list[list[str]]) -> tuple[list[list[int]], Timing]:
        started = time.perf_counter()
        rows = [row for batch in batches for row in encode(batch)]
        seconds = time.perf_counter() - started
        return rows, Timing(len(rows) / seconds, seconds / len(rows) * 1e6, 0.0)

    return run


def spin(stop: threading.Event) -> int:
    """Rounds of a small pure-Python loop until `stop`: the stand-in for the Kafka thread's work."""
    rounds = 0
    while not stop.is_set():
        sum(range(50))
        rounds += 1
    return rounds


def python_loop_rate(seconds: float) -> float:
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    started = time.perf_counter()
    timer.start()
    rounds = spin(stop)
    return rounds / (time.perf_counter() - started)


def pooled(
    tokenizer: Tokenizer, threads: int, *, busy: bool
) -> Callable[[list[list[str]]], tuple[list[list[int]], Timing]]:
    """The pool's run; when `busy` the caller spins in Python meanwhile, else it waits."""

    def run(batches: list[list[str]]) -> tuple[list[list[int]], Timing]:
        # Measured just before, as the machine's load drifts.
        solo_rate = python_loop_rate(SOLO_S) if busy else None
        pool = TokenizerPool(RustEncoder(tokenizer), threads=threads)
        finished = threading.Event()
        pending = [len(batches)]
        lock = threading.Lock()

        def one_done(_: Future[Tokenized[RustEncoder]]) -> None:
            with lock:
                pending[0] -= 1
                if pending[0] == 0:
                    finished.set()

        try:
            started = time.perf_counter()
            futures = [pool.submit(batch) for batch in batches]
            submitted = time.perf_counter()
            for future in futures:
                future.add_done_callback(one_done)
            if solo_rate is None:
                finished.wait()
                rounds = 0
            else:
                rounds = spin(finished)
            ended = time.perf_counter()
            rows: list[list[int]] = []
            for future in futures:
                result = future.result()
                if result.rejections:
                    raise RuntimeError(f"the pool rejected titles: {result.rejections}")
                rows.extend(row for row in result.ids if row is not None)
        finally:
            pool.close(timeout_s=10.0)
        seconds = ended - started
        share = None
        if solo_rate is not None:
            share = rounds / (ended - submitted) / solo_rate if ended > submitted else 0.0
        return rows, Timing(len(rows) / seconds, (submitted - started) / len(rows) * 1e6, share)

    return run


def bpe_qwen_encoder(tokenizer: Tokenizer, max_length: int) -> tuple[Encode, float] | str:
    """bpe-qwen's batch call with HF's end-of-text and truncation and the seconds it took to
    load, or why it cannot run."""
    try:
        module = importlib.import_module("bpe_qwen")
    except ImportError:
        return "not installed (`pip install bpe-qwen` to include it)"
    if not (QWEN3_TOKENIZER / "merges.txt").is_file():
        return "needs the Qwen3 vocabulary (../shared/data/qwen3-tokenizer)"
    end_of_text = tokenizer.token_to_id(END_OF_TEXT)
    if end_of_text is None:
        return f"the tokenizer has no {END_OF_TEXT} token"
    started = time.perf_counter()
    bpe: BpeQwen = module.QwenTokenizer(str(QWEN3_TOKENIZER))
    load_s = time.perf_counter() - started

    def encode(texts: list[str]) -> list[list[int]]:
        return [[*ids[: max_length - 1], end_of_text] for ids in bpe.encode_batch_parallel(texts)]

    return encode, load_s


def probe_strings(count: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    return [
        "".join(chr(rnd.randint(*rnd.choice(PROBE_BLOCKS))) for _ in range(rnd.randint(1, 30)))
        for _ in range(count)
    ]


def differing(rows: list[list[int]], reference: list[list[int]]) -> int:
    """Titles whose ids differ from the reference's (every title when rows went missing)."""
    if len(rows) != len(reference):
        return len(reference)
    return sum(a != b for a, b in zip(rows, reference, strict=True))


def in_batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def run(args: argparse.Namespace, work: Path) -> str:
    started = time.perf_counter()
    bench_tokenizer = load_tokenizer(work, max_length=args.max_length)
    load_s = time.perf_counter() - started
    tokenizer = bench_tokenizer.tokenizer
    titles = load_titles(args.data)
    chosen = titles.titles[: args.titles] if args.titles else titles.titles
    texts = [model_text(t, args.instruction) for t in chosen]
    batches = in_batches(texts, args.batch)

    def hf_batch(batch: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch(batch)]

    def hf_fast(batch: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch_fast(batch)]

    contenders = [
        Contender("HF `encode_batch` (reference)", inline(hf_batch)),
        Contender("HF `encode_batch_fast`", inline(hf_fast)),
    ]
    bpe = bpe_qwen_encoder(tokenizer, args.max_length) if args.bpe_qwen else "left out (--no-bpe-qwen)"
    if not isinstance(bpe, str):
        bpe_encode, bpe_load_s = bpe
        contenders.append(Contender("bpe-qwen `encode_batch_parallel`", inline(bpe_encode)))
    for threads in args.threads:
        size = f"pool, {threads} thread{'s' if threads > 1 else ''} (`encode_batch_fast`)"
        contenders += [
            Contender(f"{size}, caller waiting", pooled(tokenizer, threads, busy=False)),
            Contender(f"{size}, caller busy in Python", pooled(tokenizer, threads, busy=True)),
        ]

    reference = [row for batch in batches for row in hf_batch(batch)]
    timings: dict[str, list[Timing]] = {c.name: [] for c in contenders}
    differs = {c.name: 0 for c in contenders}
    for _ in range(args.repeats):
        for contender in contenders:
            rows, timing = contender.run(batches)
            timings[contender.name].append(timing)
            differs[contender.name] = max(differs[contender.name], differing(rows, reference))
    probe = in_batches([model_text(t, args.instruction) for t in probe_strings(args.probe)], args.batch)
    probe_reference = [row for batch in probe for row in hf_batch(batch)]
    probe_differs = {c.name: differing(c.run(probe)[0], probe_reference) for c in contenders}

    base = statistics.median(t.titles_per_s for t in timings[contenders[0].name])
    lines = [
        f"{len(texts):,} titles ({titles.source}), {bench_tokenizer.name} tokenizer, batches of "
        f"{args.batch}, truncated at {args.max_length}, instruction: "
        f"{'none' if not args.instruction else repr(args.instruction)}; median of {args.repeats} "
        f"interleaved runs; GIL switch interval {args.switch_interval_ms:g} ms. Machine: "
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores usable. The Rust tokenizer "
        "spreads each batch call over its own threads (rayon), inline or in the pool, unless "
        f"TOKENIZERS_PARALLELISM=false (here: {os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}).",
        "",
        "| encoder | titles/s | vs reference | caller µs/title | caller's Python speed meanwhile "
        f"| ids differing: bench titles | ids differing: {args.probe:,} random multi-script strings |",
        "|---|---|---|---|---|---|---|",
    ]
    for contender in contenders:
        runs = timings[contender.name]
        rate = statistics.median(t.titles_per_s for t in runs)
        caller = statistics.median(t.caller_us_per_title for t in runs)
        shares = [t.caller_python_share for t in runs if t.caller_python_share is not None]
        share = f"{statistics.median(shares):.0%}" if shares else "—"
        lines.append(
            f"| {contender.name} | {rate:,.0f} | {rate / base:.2f}x | {caller:.2f} | {share} "
            f"| {differs[contender.name]} | {probe_differs[contender.name]} |"
        )
    if isinstance(bpe, str):
        lines += ["", f"bpe-qwen: {bpe}."]
    else:
        lines += ["", f"bpe-qwen took {bpe_load_s:.1f} s to load its tokenizer (HF: {load_s:.1f} s)."]
    return "\n".join(lines)


def thread_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts are positive integers, not {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REAL_TITLES, help="titles (JSON lines)")
    parser.add_argument("--titles", type=int, default=0, help="first N titles; 0 = all")
    parser.add_argument("--batch", type=int, default=512, help="titles per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=3_000, help="random multi-script strings")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--instruction", default=None, help="prefix prepended to every title")
    parser.add_argument("--threads", type=thread_counts, default=[1, 2], help="pool sizes, e.g. 1,2")
    parser.add_argument("--bpe-qwen", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        default=0.2,
        help="the interpreter's GIL switch interval during the run (the service sets 0.2 ms)",
    )
    parser.add_argument("--update", type=Path, help="write the results into this Markdown file")
    args = parser.parse_args(argv)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(args.switch_interval_ms / 1000)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tokenizers-") as work:
            text = run(args, Path(work))
    finally:
        sys.setswitchinterval(previous)
    print(text)
    if args.update:
        record_result(args.update, SECTION, "python -m bench.tokenizers", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
