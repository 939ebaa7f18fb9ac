"""Padding: tokens a device computes (longest row x rows, per batch) per real token.

The engine's batches come from its own `LengthGrouper` (a window sorted by token count, then
cut); the reference recipe pads fixed batches of 32 in arrival order to their longest title.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prodcat.consumer.batcher import BatchLimits, LengthGrouper

REFERENCE_BATCH = 32


def ratio(batches: Sequence[Sequence[int]]) -> float:
    """Padded / real tokens over batches given as the token count of each row."""
    padded = sum(max(rows) * len(rows) for rows in batches if rows)
    real = sum(sum(rows) for rows in batches)
    return padded / real if real else 0.0


def rows_of(batches: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
    """Token counts per row of batches of token ids."""
    return [[len(row) for row in rows] for rows in batches]


def reference_batches(lengths: Sequence[int], size: int = REFERENCE_BATCH) -> list[list[int]]:
    return [list(lengths[start : start + size]) for start in range(0, len(lengths), size)]


def engine_batches(lengths: Sequence[int], limits: BatchLimits, window_items: int) -> list[list[int]]:
    """The grouper's batches when each window is cut after `window_items` arrivals.

    At full load the window fills (`limits.window_items`); at lower load `--max-wait-ms` cuts
    it first, after about arrival rate x max wait titles.
    """
    grouper: LengthGrouper[int] = LengthGrouper(limits, time.monotonic)
    batches: list[list[int]] = []
    for start in range(0, len(lengths), window_items):
        for tokens in lengths[start : start + window_items]:
            grouper.add(tokens, tokens)
        batches.extend(batch.items for batch in grouper.flush())
    return batches


def window_at(titles_per_s: float, limits: BatchLimits) -> int:
    """Titles in a window at an arrival rate: what arrives within the wait, at most a full window."""
    return max(1, min(limits.window_items, round(titles_per_s * limits.max_wait_s)))
