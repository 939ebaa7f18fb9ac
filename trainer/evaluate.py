"""Predictions and validation metrics for a classifier, tokenized exactly as at serving time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.trainer import metrics
from prodcat.trainer.device import autocast
from prodcat.trainer.records import LabeledTitle


def predict(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    titles: Sequence[str],
    *,
    max_length: int,
    instruction: str | None = None,
    batch_size: int = 64,
) -> list[int]:
    """The arg-max class id of every title."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    predictions: list[int] = []
    with torch.inference_mode(), autocast(device):
        for start in range(0, len(titles), batch_size):
            batch = encode(
                tokenizer,
                titles[start : start + batch_size],
                max_length=max_length,
                instruction=instruction,
            ).to(device)
            logits = model(batch["input_ids"], batch["attention_mask"])
            predictions.extend(logits.argmax(dim=-1).tolist())
    model.train(was_training)
    return predictions


def evaluate(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[LabeledTitle],
    labels: Sequence[str],
    *,
    max_length: int,
    instruction: str | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """`accuracy`, `macro_f1` and `f1.<label>` for every label, ready for the manifest."""
    predicted = predict(
        model,
        tokenizer,
        [r.title for r in records],
        max_length=max_length,
        instruction=instruction,
        batch_size=batch_size,
    )
    y_pred = [labels[i] for i in predicted]
    y_true = [r.category for r in records]
    scores = {
        "accuracy": metrics.accuracy(y_true, y_pred),
        "macro_f1": metrics.macro_f1(y_true, y_pred, labels),
    }
    for label, score in metrics.per_class(y_true, y_pred, labels).items():
        scores[f"f1.{label}"] = score.f1
    return scores
