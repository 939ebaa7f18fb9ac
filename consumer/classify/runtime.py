"""The serving classifier: a verified checkpoint, loaded for its device, warmed up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import GOLDEN_FILE, Checkpoint, resolve, verify
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import TitleEncoder


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device answers")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def serving_dtype(device: torch.device) -> torch.dtype:
    # Half precision on the GPU is the point of the design; CPUs run fp16 matmuls slowly or not at all.
    return torch.float16 if device.type == "cuda" else torch.float32


class Classifier:
    def __init__(
        self,
        checkpoint: Checkpoint,
        model: ProductClassifier,
        tokenizer: PreTrainedTokenizerBase,
        device: torch.device,
    ) -> None:
        self.checkpoint = checkpoint
        self._model = model
        self._encode = TitleEncoder(
            tokenizer, max_length=checkpoint.manifest.max_length, instruction=checkpoint.manifest.instruction
        )
        self._device = device
        self.labels = tuple(checkpoint.manifest.labels)

    @classmethod
    def load(cls, location: Path, *, model_name: str | None = None, device: str = "auto") -> Classifier:
        checkpoint = verify(resolve(location, model_name))
        torch_device = pick_device(device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(checkpoint.directory))
            model = ProductClassifier.load(
                checkpoint.directory, dtype=serving_dtype(torch_device), device=torch_device
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {checkpoint.directory} does not load: {exc}") from None
        if model.head.out_features != len(checkpoint.manifest.labels):
            raise CheckpointError(
                f"checkpoint {checkpoint.directory}: head has {model.head.out_features} outputs "
                f"but the manifest lists {len(checkpoint.manifest.labels)} labels"
            )
        classifier = cls(checkpoint, model, tokenizer, torch_device)
        classifier.predict(["warm-up"], top_k=1)
        return classifier

    @property
    def model_name(self) -> str:
        return self.checkpoint.manifest.model_name

    @property
    def version(self) -> str:
        return self.checkpoint.manifest.version

    @property
    def device(self) -> torch.device:
        return self._device

    def token_estimate(self, title: str) -> int:
        """A cheap upper-bound guess of a title's token count, for batch budgeting."""
        return min(self.checkpoint.manifest.max_length, len(title) // 3 + 2)

    @torch.inference_mode()
    def predict(self, titles: Sequence[str], *, top_k: int) -> list[Prediction]:
        input_ids, attention_mask = self._encode(titles)
        logits = self._model(
            input_ids.to(self._device, non_blocking=True), attention_mask.to(self._device, non_blocking=True)
        )
        probabilities = torch.softmax(logits.float(), dim=-1)
        k = min(top_k, len(self.labels))
        scores, indices = probabilities.topk(k, dim=-1)
        labels = self.labels
        return [
            Prediction(
                label=labels[row_indices[0]],
                confidence=row_scores[0],
                top_k=tuple((labels[i], s) for i, s in zip(row_indices, row_scores, strict=True)),
            )
            for row_scores, row_indices in zip(scores.cpu().tolist(), indices.cpu().tolist(), strict=True)
        ]

    def golden_agreement(self) -> float | None:
        """Share of the checkpoint's golden titles given the label recorded at publish time.

        None when the checkpoint has no golden set. Below 1.0 on a GPU is normal for titles
        near a tie (fp16 here, fp32 when published); far below means a broken checkpoint.
        """
        path = self.checkpoint.directory / GOLDEN_FILE
        if not path.is_file():
            return None
        try:
            golden = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
            titles, labels = [str(g["title"]) for g in golden], [str(g["label"]) for g in golden]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} is not a golden set: {exc}") from None
        if not golden:
            return None
        predicted = self.predict(titles, top_k=1)
        return sum(p.label == label for p, label in zip(predicted, labels, strict=True)) / len(golden)


def load_checked(
    location: Path, *, model_name: str | None = None, device: str = "auto", min_agreement: float
) -> Classifier:
    """Loads, verifies and warms a checkpoint, and refuses it when it disagrees with its golden set."""
    classifier = Classifier.load(location, model_name=model_name, device=device)
    agreement = classifier.golden_agreement()
    if agreement is not None and agreement < min_agreement:
        raise CheckpointError(
            f"checkpoint {classifier.checkpoint.directory} agrees with its golden set on "
            f"{agreement:.0%} of titles (at least {min_agreement:.0%} required)"
        )
    return classifier
