"""The serving contract: what an engine may ask of a loaded model, and its torch implementation.

The contract is two calls and a few facts. `encode` runs where records are accepted (the
Kafka thread), so batches are budgeted on exact token counts; `infer` runs on the device
worker and is the only call that touches the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import Checkpoint
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import model_text


@dataclass(frozen=True, slots=True)
class Inference:
    """Per row, best first: label indices and their probabilities; the pooled embeddings when asked."""

    indices: list[list[int]]
    scores: list[list[float]]
    embeddings: torch.Tensor | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]


class ServingModel(Protocol):
    @property
    def model_name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def max_length(self) -> int:
        """Most tokens `encode` returns for one title."""
        ...

    @property
    def device(self) -> str: ...

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        """Token ids per title, instruction prefix and end-of-text token included, truncated.

        Safe to call from several threads at once (the tokenizer pool does)."""
        ...

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference: ...

    def health(self) -> None:
        """Raises when the device can no longer run the model."""
        ...


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device answers")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def serving_dtype(device: torch.device) -> torch.dtype:
    # Half precision on the GPU is the point of the design; CPUs run fp16 matmuls slowly.
    return torch.float16 if device.type == "cuda" else torch.float32


class TorchModel:
    """A verified checkpoint on its device; `infer` is meant for one thread at a time."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        network: ProductClassifier,
        tokenizer: PreTrainedTokenizerBase,
        device: torch.device,
    ) -> None:
        if not tokenizer.is_fast or tokenizer.pad_token_id is None:
            raise CheckpointError("the checkpoint's tokenizer must be a fast tokenizer with a pad token")
        manifest = checkpoint.manifest
        self.checkpoint = checkpoint
        self._network = network
        self._device = device
        self._labels = tuple(manifest.labels)
        self._max_length = manifest.max_length
        self._instruction = manifest.instruction
        self._pad_id = int(tokenizer.pad_token_id)
        # The Rust tokenizer directly: the transformers call wrapper costs as much Python time
        # per title as the tokenization itself. Same ids as `model.encode.encode`.
        self._tokenizer = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self._max_length)
        self._cuda = device.type == "cuda"
        # Its own stream, so copies and kernels of this worker never queue behind other work.
        self._stream = torch.cuda.Stream(device=device) if self._cuda else None

    @property
    def model_name(self) -> str:
        return self.checkpoint.manifest.model_name

    @property
    def version(self) -> str:
        return self.checkpoint.manifest.version

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def network(self) -> ProductClassifier:
        return self._network

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        texts = [model_text(t, self._instruction) for t in titles] if self._instruction else list(titles)
        return [e.ids for e in self._tokenizer.encode_batch_fast(texts)]

    def _padded(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(len(r) for r in rows)
        ids = np.full((len(rows), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        for i, row in enumerate(rows):
            # Left padding: the last real token sits in the last column, where pooling reads it.
            ids[i, longest - len(row) :] = row
            mask[i, longest - len(row) :] = 1
        input_ids, attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
        if self._cuda:
            # Pinned host memory is what lets the copy below run asynchronously.
            input_ids, attention_mask = input_ids.pin_memory(), attention_mask.pin_memory()
        return input_ids, attention_mask

    @torch.inference_mode()
    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        if not rows:
            return Inference(indices=[], scores=[])
        input_ids, attention_mask = self._padded(rows)
        k = min(top_k, len(self._labels))
        if self._stream is None:
            return self._run(input_ids, attention_mask, k, embeddings)
        with torch.cuda.stream(self._stream):
            inference = self._run(
                input_ids.to(self._device, non_blocking=True),
                attention_mask.to(self._device, non_blocking=True),
                k,
                embeddings,
            )
        return inference

    def _run(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int, embeddings: bool
    ) -> Inference:
        pooled = self._network.embed(input_ids, attention_mask)
        logits = self._network.head(pooled.to(self._network.head.weight.dtype))
        scores, indices = torch.softmax(logits.float(), dim=-1).topk(k, dim=-1)
        pooled_host: torch.Tensor | None = None
        if self._stream is not None:
            host_scores = torch.empty(scores.shape, dtype=scores.dtype, pin_memory=True)
            host_indices = torch.empty(indices.shape, dtype=indices.dtype, pin_memory=True)
            host_scores.copy_(scores, non_blocking=True)
            host_indices.copy_(indices, non_blocking=True)
            if embeddings:
                pooled_host = torch.empty(pooled.shape, dtype=pooled.dtype, pin_memory=True)
                pooled_host.copy_(pooled, non_blocking=True)
            # The one wait per batch: the copies back are queued behind the forward pass.
            self._stream.synchronize()
            scores, indices = host_scores, host_indices
        elif embeddings:
            pooled_host = pooled.clone()
        return Inference(indices=indices.tolist(), scores=scores.tolist(), embeddings=pooled_host)

    def predict(self, titles: Sequence[str], *, top_k: int = 1) -> list[Prediction]:
        """Labels for titles in one call: for evaluation, the golden gate and scripts, not the engine."""
        inference = self.infer(self.encode(titles), top_k=top_k)
        labels = self._labels
        return [
            Prediction(
                label=labels[row_indices[0]],
                confidence=row_scores[0],
                top_k=tuple((labels[i], s) for i, s in zip(row_indices, row_scores, strict=True)),
            )
            for row_indices, row_scores in zip(inference.indices, inference.scores, strict=True)
        ]

    def health(self) -> None:
        if self._cuda:
            # Surfaces a device lost to an Xid error or a reset before the next batch is built.
            torch.cuda.synchronize(self._device)
