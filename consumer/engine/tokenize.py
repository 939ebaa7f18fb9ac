"""The tokenizer stage: token ids for a poll's titles, for the model new batches are made for.

Every title goes through the checkpoint's tokenizer (instruction prefix and end-of-text
token included), so the grouper budgets on the ids the model will see. `encode_titles`
is the one call that does the work: a pool off the Kafka thread can stand in for it. A
title the tokenizer rejects fails alone; the caller dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prodcat.model.runtime import ServingModel

Encoder = Callable[[ServingModel, Sequence[str]], list[list[int]]]


def model_encode(model: ServingModel, titles: Sequence[str]) -> list[list[int]]:
    """The model's own batch call, on the calling thread."""
    return model.encode(titles)


class TokenizerStage:
    def __init__(self, encode_titles: Encoder = model_encode) -> None:
        self._encode_titles = encode_titles

    def encode(self, model: ServingModel, titles: Sequence[str]) -> list[list[int] | Exception]:
        """Ids per title, or the error of a title the tokenizer rejects on its own."""
        if not titles:
            return []
        try:
            return list(self._encode_titles(model, titles))
        except Exception:
            encoded: list[list[int] | Exception] = []
            for title in titles:
                try:
                    encoded.append(model.encode([title])[0])
                except Exception as exc:
                    encoded.append(exc)
            return encoded
