"""Titles to model inputs, the same way at training and at serving time."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import BatchEncoding, PreTrainedTokenizerBase


def model_text(title: str, instruction: str | None) -> str:
    return f"{instruction}{title}" if instruction else title


def encode(
    tokenizer: PreTrainedTokenizerBase,
    titles: Sequence[str],
    *,
    max_length: int,
    instruction: str | None = None,
) -> BatchEncoding:
    """Left-padded, truncated ids; the tokenizer appends its end-of-text token to every row."""
    tokenizer.padding_side = "left"
    encoded: BatchEncoding = tokenizer(
        [model_text(t, instruction) for t in titles],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return encoded
