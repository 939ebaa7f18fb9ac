"""A real model shape with random weights: the engine's batching against the reference recipe.

The engine: exact token counts from the Rust tokenizer, a sorted window cut by
`LengthGrouper`, and `TorchModel.infer` (left padding, fp16 on CUDA, fp32 on CPU). The
reference recipe: the transformers tokenizer padding each fixed batch of 32, in arrival
order, to its longest title, then the same network. Same titles, same network, same
device; Kafka is left out, so this is the model side alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from bench.corpus import MAX_LENGTH
from bench.padding import REFERENCE_BATCH
from bench.stand_in import LABELS
from prodcat.consumer.batcher import BatchLimits, LengthGrouper
from prodcat.model.checkpoint import Checkpoint
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.model.runtime import TorchModel, pick_device, serving_dtype
from prodcat.schemas.manifest import CheckpointManifest, TrainingRecipe


@dataclass(frozen=True, slots=True)
class ShapeResult:
    engine_per_s: float
    reference_per_s: float
    titles: int
    device: str
    dtype: str
    layers: int
    hidden: int

    @property
    def ratio(self) -> float:
        return self.engine_per_s / self.reference_per_s if self.reference_per_s > 0 else 0.0


def device_name(device: torch.device) -> str:
    """The device's own name: what the figures were measured on."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def random_model(shape_dir: Path, device: torch.device) -> TorchModel:
    """`TorchModel` over a randomly initialised network of `shape_dir`'s config and its tokenizer.

    The manifest exists only in memory and lists no files: nothing here is a checkpoint.
    """
    dtype = serving_dtype(device)
    config = AutoConfig.from_pretrained(str(shape_dir))
    torch.manual_seed(0)
    backbone = AutoModel.from_config(config, attn_implementation="sdpa", dtype=dtype)
    network = ProductClassifier(backbone, num_labels=len(LABELS)).to(device=device, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(shape_dir))
    manifest = CheckpointManifest(
        model_name="random-shape",
        version="random",
        created_at=datetime.now(UTC),
        base_model=str(shape_dir),
        labels=list(LABELS),
        max_length=MAX_LENGTH,
        dtype=str(dtype).removeprefix("torch."),  # type: ignore[arg-type]
        training=TrainingRecipe(
            method="full",
            learning_rate=0.0,
            epochs=0.0,
            batch_size=REFERENCE_BATCH,
            seed=0,
            train_examples=0,
            validation_examples=0,
        ),
        files={},
    )
    return TorchModel(Checkpoint(shape_dir, manifest), network, tokenizer, device)


def _timed(run: Callable[[], int], device: torch.device) -> float:
    """Titles/s of `run`, which returns how many titles it classified."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    count = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - started)


def compare(shape_dir: Path, titles: list[str], *, device_choice: str, limits: BatchLimits) -> ShapeResult:
    device = pick_device(device_choice)
    model = random_model(shape_dir, device)
    network = model.network
    tokenizer = AutoTokenizer.from_pretrained(str(shape_dir))

    def engine() -> int:
        grouper: LengthGrouper[int] = LengthGrouper(limits, time.monotonic)
        rows = model.encode(titles)
        for start in range(0, len(rows), limits.window_items):
            for index in range(start, min(len(rows), start + limits.window_items)):
                grouper.add(index, len(rows[index]))
            for batch in grouper.flush():
                model.infer([rows[i] for i in batch.items], top_k=3)
        return len(titles)

    @torch.inference_mode()
    def reference() -> int:
        for start in range(0, len(titles), REFERENCE_BATCH):
            batch = encode(tokenizer, titles[start : start + REFERENCE_BATCH], max_length=MAX_LENGTH)
            logits = network(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            torch.softmax(logits.float(), dim=-1).topk(3, dim=-1)[0].tolist()
        return len(titles)

    # Untimed warm-up of both paths: kernels chosen, allocator primed.
    model.infer(model.encode(titles[:REFERENCE_BATCH]), top_k=3)
    with torch.inference_mode():
        warm = encode(tokenizer, titles[:REFERENCE_BATCH], max_length=MAX_LENGTH)
        network(warm["input_ids"].to(device), warm["attention_mask"].to(device))
    reference_per_s = _timed(reference, device)
    engine_per_s = _timed(engine, device)
    config = backbone_config(network)
    return ShapeResult(
        engine_per_s=engine_per_s,
        reference_per_s=reference_per_s,
        titles=len(titles),
        device=device_name(device),
        dtype=str(serving_dtype(device)).removeprefix("torch."),
        layers=config[0],
        hidden=config[1],
    )


def backbone_config(network: ProductClassifier) -> tuple[int, int]:
    """(layers, hidden size) of the network, as its config states them."""
    config = network.backbone.config
    return int(config.num_hidden_layers), int(config.hidden_size)
