"""Titles to model inputs, the same way at training and at serving time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BatchEncoding, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError


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


class TitleEncoder:
    """`encode` for the serving hot path: the same ids, from the Rust tokenizer directly.

    The transformers call wrapper spends as much Python time per title as the
    tokenization itself, which would cap a GPU consumer near ten thousand titles/s.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, *, max_length: int, instruction: str | None = None
    ) -> None:
        if not tokenizer.is_fast or tokenizer.pad_token is None:
            raise CheckpointError("the checkpoint's tokenizer must be a fast tokenizer with a pad token")
        self._backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._backend.enable_truncation(max_length)
        self._backend.enable_padding(
            direction="left", pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token
        )
        self._instruction = instruction

    def __call__(self, titles: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both int64 of shape (len(titles), longest)."""
        texts = [model_text(t, self._instruction) for t in titles]
        encodings = self._backend.encode_batch_fast(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return torch.from_numpy(ids), torch.from_numpy(mask)
