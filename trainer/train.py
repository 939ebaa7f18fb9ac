"""Fine-tunes a ProductClassifier on labelled titles and publishes the result.

LoRA adapts the backbone's attention and MLP projections while the head trains in full;
the adapters are merged before publishing, so the consumer loads a plain model.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from consumer.classify.checkpoint import load_manifest, resolve
from consumer.classify.encode import encode
from consumer.classify.model import ProductClassifier
from consumer.errors import ConfigError
from schemas.labels import DEFAULT_CATEGORIES
from schemas.manifest import TrainingRecipe
from trainer import distributed
from trainer.checkpointing import TrainingPaused, clear_state, fingerprint, load_state, save_state, state_dir
from trainer.data import label_index, split
from trainer.dataset_build import is_dataset_dir, load_split
from trainer.device import autocast, autocast_dtype, training_device
from trainer.evaluate import evaluate
from trainer.publish import publish
from trainer.records import LabeledTitle, read_jsonl

GOLDEN_SIZE = 32
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    base_model: str
    registry: Path
    model_name: str = "product-categorizer"
    labels: tuple[str, ...] = DEFAULT_CATEGORIES
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 5e-5
    epochs: float = 1.0
    batch_size: int = 32
    max_length: int = 64
    warmup_fraction: float = 0.06
    grad_clip: float = 1.0
    seed: int = 0
    instruction: str | None = None
    validation_fraction: float = 0.15
    grad_accum_steps: int = 1
    class_weighting: Literal["none", "balanced"] = "none"
    """"balanced" weighs each class's loss by n / (classes x n_class), lifting rare classes."""
    balanced_sampling: bool = False
    """Draw examples so every class is seen equally often (with replacement)."""
    eval_every: int | None = None
    """Validate every N optimizer steps (default: once per epoch) and at the end; the best wins."""
    resume: bool = False
    """Continue from the state an interrupted run saved under <registry>/<model>/.train-state."""
    save_every: int = 200
    """Save the resumable state every N optimizer steps (also at each epoch end and on Ctrl-C)."""
    stop_after_steps: int | None = None
    """Stop (state saved, nothing published) after this many steps in this invocation."""
    progress: bool = True

    def __post_init__(self) -> None:
        problems = [
            message
            for failed, message in (
                (len(self.labels) < 2, "labels needs at least two categories"),
                (len(set(self.labels)) != len(self.labels), "labels must be unique"),
                (self.epochs <= 0, "epochs must be positive"),
                (self.batch_size < 1, "batch_size must be at least 1"),
                (self.learning_rate <= 0, "learning_rate must be positive"),
                (not 0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)"),
                (not 0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
                (self.max_length < 4, "max_length must be at least 4"),
                (self.grad_clip <= 0, "grad_clip must be positive"),
                (self.grad_accum_steps < 1, "grad_accum_steps must be at least 1"),
                (self.class_weighting not in ("none", "balanced"), "class_weighting is none or balanced"),
                (self.eval_every is not None and self.eval_every < 1, "eval_every must be at least 1"),
                (self.save_every < 1, "save_every must be at least 1"),
                (
                    self.stop_after_steps is not None and self.stop_after_steps < 1,
                    "stop_after_steps must be >= 1",
                ),
            )
            if failed
        ]
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))


@dataclass
class TrainResult:
    checkpoint: Path
    version: str
    metrics: dict[str, float]
    # Records whose category is not one of the configured labels.
    skipped: int
    # The merged full-precision model, before the cast to the published dtype.
    model: ProductClassifier = field(repr=False)


def train(config: TrainConfig) -> TrainResult:
    """Reads, splits, fine-tunes, validates and publishes; the new checkpoint becomes CURRENT."""
    index = label_index(config.labels)
    train_set, validation, skipped = _read_data(config, index)
    if not train_set or not validation:
        raise ConfigError(
            f"{config.data} has {len(train_set) + len(validation)} records in the configured labels; "
            "need enough for both a training and a validation split"
        )

    ranks = distributed.start()
    # Seeds the head's and the adapters' initialisation and LoRA dropout, the same on every rank.
    torch.manual_seed(config.seed)
    device = (
        torch.device("cuda", ranks.local_rank)
        if ranks.active and torch.cuda.is_available()
        else training_device()
    )
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    model = ProductClassifier.from_base(config.base_model, len(config.labels))
    if not config.full_finetune:
        # Only the backbone is wrapped, so the head keeps requires_grad and trains in full.
        model.backbone = get_peft_model(
            model.backbone,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(LORA_TARGETS),
            ),
        )
    model.to(device)

    best = _fit(model, tokenizer, train_set, validation, index, config, device, ranks)
    if not ranks.is_main:
        # Rank 0 publishes; the others wait for it and report the same checkpoint.
        ranks.barrier()
        distributed.stop(ranks)
        published = resolve(config.registry / config.model_name)
        metrics = dict(load_manifest(published).metrics)
        return TrainResult(published, published.name, metrics, skipped, model)
    with tempfile.TemporaryDirectory(prefix="prodcat-adapter-") as scratch:
        adapter = None
        if not config.full_finetune:
            adapter = Path(scratch) / "adapter"
            model.backbone.save_pretrained(str(adapter), safe_serialization=True)
            model.backbone = model.backbone.merge_and_unload()
        model.eval()
        metrics = _score(model, tokenizer, validation, config)
        metrics["best_step"] = float(best.step)
        checkpoint = _publish(model, tokenizer, config, metrics, adapter, train_set, validation)
    # Published: a later run starts afresh instead of resuming this finished one.
    clear_state(state_dir(config.registry, config.model_name))
    ranks.barrier()
    distributed.stop(ranks)
    return TrainResult(
        checkpoint=checkpoint,
        version=checkpoint.name,
        metrics=metrics,
        skipped=skipped,
        model=model,
    )


def _publish(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    config: TrainConfig,
    metrics: dict[str, float],
    adapter: Path | None,
    train_set: Sequence[LabeledTitle],
    validation: Sequence[LabeledTitle],
) -> Path:
    return publish(
        model,
        tokenizer,
        registry=config.registry,
        model_name=config.model_name,
        base_model=config.base_model,
        labels=config.labels,
        max_length=config.max_length,
        instruction=config.instruction,
        recipe=_recipe(config, len(train_set), len(validation)),
        metrics=metrics,
        adapter=adapter,
        golden_titles=[r.title for r in validation[:GOLDEN_SIZE]],
    )


def _read_data(
    config: TrainConfig, index: dict[str, int]
) -> tuple[list[LabeledTitle], list[LabeledTitle], int]:
    """Training and validation records in the label set, and how many were outside it.

    A dataset directory brings its own cluster-grouped validation split; a JSONL file is
    split here, stratified by label.
    """
    if is_dataset_dir(config.data):
        parts = [load_split(config.data, "train"), load_split(config.data, "validation")]
        train_set, validation = ([r for r in part if r.category in index] for part in parts)
        return train_set, validation, sum(map(len, parts)) - len(train_set) - len(validation)
    records = read_jsonl(config.data)
    known = [r for r in records if r.category in index]
    train_set, validation = split(known, validation_fraction=config.validation_fraction, seed=config.seed)
    return train_set, validation, len(records) - len(known)


@dataclass
class _Best:
    macro_f1: float = -1.0
    step: int = 0
    weights: dict[str, torch.Tensor] = field(default_factory=dict)


def class_weights(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """scikit-learn's "balanced" weights, n / (classes x n_class); absent classes weigh 0."""
    counts = torch.bincount(targets, minlength=num_labels).float()
    present = counts > 0
    weights = torch.zeros(num_labels)
    weights[present] = len(targets) / (int(present.sum()) * counts[present])
    return weights


def _fit(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[LabeledTitle],
    validation: Sequence[LabeledTitle],
    index: dict[str, int],
    config: TrainConfig,
    device: torch.device,
    ranks: distributed.Ranks,
) -> _Best:
    """Trains in place, validating periodically; leaves the best-scoring weights in the model."""
    titles = [r.title for r in records]
    targets = torch.tensor([index[r.category] for r in records])
    micro_batches = max(1, math.ceil(config.epochs * math.ceil(len(records) / config.batch_size)))
    total_steps = math.ceil(micro_batches / config.grad_accum_steps)
    steps_per_epoch = max(1, math.ceil(len(records) / (config.batch_size * config.grad_accum_steps)))
    eval_every = config.eval_every or steps_per_epoch
    warmup_steps = int(config.warmup_fraction * total_steps)

    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    parameters = list(trainable.values())
    # Validation runs on rank 0 alone, through the bare model: a DDP forward there would wait
    # for the other ranks.
    net: torch.nn.Module = DistributedDataParallel(model, broadcast_buffers=False) if ranks.active else model
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(_warmup_then_decay, warmup=warmup_steps, total=total_steps)
    )
    # bf16 needs no loss scaling; fp16 (CUDA without bf16) does.
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)
    weight = class_weights(targets, len(index)).to(device) if config.class_weighting == "balanced" else None
    sampling = 1.0 / torch.bincount(targets)[targets] if config.balanced_sampling else None

    states = state_dir(config.registry, config.model_name)
    run_id = fingerprint(_run_settings(config, len(records)))
    best, step = _Best(), 0

    def save() -> None:
        if not ranks.is_main:
            return
        save_state(
            states,
            {
                "fingerprint": run_id,
                "step": step,
                "trainable": {name: p.detach().cpu() for name, p in trainable.items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": torch.get_rng_state(),
                "best": {"macro_f1": best.macro_f1, "step": best.step, "weights": best.weights},
            },
        )

    if config.resume:
        state = load_state(states, run_id)
        with torch.no_grad():
            for name, value in state["trainable"].items():
                trainable[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        best = _Best(state["best"]["macro_f1"], state["best"]["step"], state["best"]["weights"])
        step = state["step"]
    # Batches already trained on are regenerated from the seed and skipped.
    done_micro = step * config.grad_accum_steps
    started_at, seen, started = step, 0, time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with tqdm(
        total=total_steps,
        initial=step,
        desc="training",
        unit="step",
        disable=not (config.progress and ranks.is_main),
    ) as bar:
        try:
            for micro, batch in enumerate(
                _batches(len(records), config.batch_size, micro_batches, generator, sampling)
            ):
                if micro < done_micro:
                    continue
                batch = ranks.shard(batch)
                inputs = encode(
                    tokenizer,
                    [titles[i] for i in batch],
                    max_length=config.max_length,
                    instruction=config.instruction,
                ).to(device)
                with _oom_guidance(config):
                    with autocast(device):
                        logits = net(inputs["input_ids"], inputs["attention_mask"])
                    loss = F.cross_entropy(logits.float(), targets[batch].to(device), weight=weight)
                    scaler.scale(loss / config.grad_accum_steps).backward()
                seen += len(batch)
                if (micro + 1) % config.grad_accum_steps and micro + 1 != micro_batches:
                    continue
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update()
                rate = seen / (time.perf_counter() - started)
                bar.set_postfix({"loss": f"{loss.item():.4f}", "ex/s": f"{rate:.0f}"})
                if ranks.is_main and (step % eval_every == 0 or step == total_steps):
                    _validate(model, tokenizer, validation, config, step, best, trainable)
                if step % config.save_every == 0 or step % steps_per_epoch == 0:
                    save()
                if config.stop_after_steps is not None and step - started_at >= config.stop_after_steps:
                    save()
                    raise TrainingPaused(
                        f"stopped after step {step} of {total_steps}; state saved in {states}; "
                        "run the same command with --resume to continue"
                    )
        except KeyboardInterrupt:
            # Parameters only change at step boundaries, so the last completed step is consistent.
            save()
            tqdm.write(f"interrupted at step {step}; state saved in {states}; continue with --resume")
            raise
    # The best weights, not the last: with more than one validation they can differ.
    with torch.no_grad():
        for name, value in best.weights.items():
            trainable[name].copy_(value)
    return best


def _run_settings(config: TrainConfig, train_examples: int) -> dict[str, Any]:
    keep = (
        "base_model",
        "labels",
        "full_finetune",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "learning_rate",
        "epochs",
        "batch_size",
        "max_length",
        "warmup_fraction",
        "grad_clip",
        "seed",
        "instruction",
        "grad_accum_steps",
        "class_weighting",
        "balanced_sampling",
    )
    return {**{name: getattr(config, name) for name in keep}, "data": str(config.data), "n": train_examples}


def _score(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    validation: Sequence[LabeledTitle],
    config: TrainConfig,
) -> dict[str, float]:
    return evaluate(
        model,
        tokenizer,
        validation,
        config.labels,
        max_length=config.max_length,
        instruction=config.instruction,
        batch_size=config.batch_size,
    )


def _validate(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    validation: Sequence[LabeledTitle],
    config: TrainConfig,
    step: int,
    best: _Best,
    trainable: dict[str, torch.nn.Parameter],
) -> None:
    model.eval()
    metrics = _score(model, tokenizer, validation, config)
    model.train()
    improved = metrics["macro_f1"] > best.macro_f1
    if config.progress:
        tqdm.write(
            f"step {step}: validation macro-F1 {metrics['macro_f1']:.4f}, accuracy {metrics['accuracy']:.4f}"
            + (" (best so far)" if improved else "")
        )
    if improved:
        best.macro_f1, best.step = metrics["macro_f1"], step
        best.weights = {name: p.detach().to("cpu", copy=True) for name, p in trainable.items()}


@contextmanager
def _oom_guidance(config: TrainConfig) -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"the GPU ran out of memory at batch size {config.batch_size}, max length {config.max_length}: "
            f"lower --batch-size (and raise --grad-accum-steps to keep the effective batch), "
            f"or lower --max-length"
        ) from None


def _batches(
    size: int,
    batch_size: int,
    total: int,
    generator: torch.Generator,
    sampling: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """`total` index batches over freshly drawn epochs: shuffled, or weighted when `sampling` is given."""
    given = 0
    while True:
        order = (
            torch.randperm(size, generator=generator)
            if sampling is None
            else torch.multinomial(sampling, size, replacement=True, generator=generator)
        )
        for batch in order.split(batch_size):
            if given == total:
                return
            given += 1
            yield batch


def _warmup_then_decay(step: int, *, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / (total - warmup))


def _recipe(config: TrainConfig, train_examples: int, validation_examples: int) -> TrainingRecipe:
    lora = not config.full_finetune
    return TrainingRecipe(
        method="lora" if lora else "full",
        lora_r=config.lora_r if lora else None,
        lora_alpha=config.lora_alpha if lora else None,
        lora_dropout=config.lora_dropout if lora else None,
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        train_examples=train_examples,
        validation_examples=validation_examples,
    )
