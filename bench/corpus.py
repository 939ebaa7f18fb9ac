"""What the pipeline benchmark feeds the engine: titles, a real tokenizer, raw events.

Real titles and the real Qwen3 tokenizer come from ../shared/data when it is present; without
it, the generated sample corpus and the tiny base's tokenizer (trained on that corpus) stand in,
and every figure says which it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from tokenizers import Tokenizer

from prodcat.trainer.records import read_jsonl
from prodcat.trainer.sample_corpus import generate, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data"
REAL_TITLES = SHARED / "product-titles/train.jsonl"
QWEN3_TOKENIZER = SHARED / "qwen3-tokenizer"
# The trainer's default, so the stand-in truncates where a published checkpoint would.
MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Titles:
    titles: list[str]
    source: str


@dataclass(frozen=True, slots=True)
class BenchTokenizer:
    tokenizer: Tokenizer
    name: str


def load_titles(path: Path | None) -> Titles:
    """Titles from `path` (JSON lines with a title); the sample corpus when it is None or absent."""
    if path is not None and path.is_file():
        return Titles([r.title for r in read_jsonl(path)], f"real titles ({path.name})")
    return Titles([r.title for r in generate()], "generated sample corpus")


def cycle(titles: list[str], count: int) -> list[str]:
    return [titles[n % len(titles)] for n in range(count)]


def load_tokenizer(work: Path, *, max_length: int = MAX_LENGTH) -> BenchTokenizer:
    """The Qwen3 tokenizer when present, else the tiny base's, truncating like the engine."""
    if (QWEN3_TOKENIZER / "tokenizer.json").is_file():
        tokenizer, name = Tokenizer.from_file(str(QWEN3_TOKENIZER / "tokenizer.json")), "Qwen3"
    else:
        corpus = work / "sample.jsonl"
        write_jsonl(generate(), corpus)
        base = build_tiny_base(corpus, work / "tiny-base")
        tokenizer, name = Tokenizer.from_file(str(base / "tokenizer.json")), "tiny base (sample corpus)"
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return BenchTokenizer(tokenizer, name)


def raw_events(titles: list[str]) -> list[bytes]:
    """One raw product event per title, shaped like the ones producers send."""
    return [
        orjson.dumps({"id": f"bench-{n:07d}", "title": title, "shop": "bench", "price": 9.99})
        for n, title in enumerate(titles)
    ]
