"""The optimization loop: batches, steps, periodic validation, resumable state.

Works on one process or as one rank of a torchrun job; `trainer.train` prepares the
model and data around it and publishes what it leaves behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from transformers import PreTrainedTokenizerBase

from prodcat.errors import ConfigError
from prodcat.model.classifier import ProductClassifier
from prodcat.model.encode import encode
from prodcat.trainer import distributed
from prodcat.trainer.checkpointing import (
    TrainingPaused,
    fingerprint,
    load_state,
    restore_rng,
    rng_state,
    save_state,
    state_dir,
)
from prodcat.trainer.device import autocast, autocast_dtype
from prodcat.trainer.evaluate import evaluate
from prodcat.trainer.progress import Progress, progress
from prodcat.trainer.records import LabeledTitle

if TYPE_CHECKING:
    from prodcat.trainer.train import TrainConfig


@dataclass
class Best:
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


def fit(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[LabeledTitle],
    validation: Sequence[LabeledTitle],
    index: dict[str, int],
    config: TrainConfig,
    device: torch.device,
    ranks: distributed.Ranks,
) -> Best:
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
    ddp = DistributedDataParallel(model, broadcast_buffers=False) if ranks.active else None
    net: torch.nn.Module = ddp if ddp is not None else model
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(_warmup_then_decay, warmup=warmup_steps, total=total_steps)
    )
    # bf16 needs no loss scaling; fp16 (CUDA without bf16) does.
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(device) == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)
    weight = class_weights(targets, len(index)).to(device) if config.class_weighting == "balanced" else None
    sampling = 1.0 / torch.bincount(targets)[targets] if config.balanced_sampling else None

    states = state_dir(config.registry, config.model_name, config.state_dir)
    run_id = fingerprint(_run_settings(config, len(records)))
    best, step = Best(), 0

    def save(*, every_rank: bool = True) -> None:
        # Each rank draws its own dropout masks, so rank 0 stores every rank's random state;
        # the gather is a collective, which an interrupt (caught at a different point on
        # each rank) cannot join.
        rng = ranks.gather(rng_state()) if every_rank else [rng_state()]
        if not ranks.is_main:
            return
        save_state(
            states,
            {
                "fingerprint": run_id,
                "step": step,
                "trainable": _on_cpu(trainable),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng,
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
        # A state saved on Ctrl-C holds rank 0's random state only; the others then reuse it.
        rng = state["rng"]
        restore_rng(rng[ranks.rank] if ranks.rank < len(rng) else rng[0])
        best = Best(state["best"]["macro_f1"], state["best"]["step"], state["best"]["weights"])
        step = state["step"]
    # Batches already trained on are regenerated from the seed and skipped.
    done_micro = step * config.grad_accum_steps
    started_at, seen, started = step, 0, time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with progress(
        "training", unit="step", total=total_steps, initial=step, enabled=config.progress and ranks.is_main
    ) as bar:
        try:
            for micro, batch in enumerate(
                batches(len(records), config.batch_size, micro_batches, generator, sampling)
            ):
                if micro < done_micro:
                    continue
                batch = ranks.shard(batch)
                inputs = encode(
                    tokenizer,
                    [titles[i] for i in batch],
                    max_length=config.max_length,
                ).to(device)
                boundary = (micro + 1) % config.grad_accum_steps == 0 or micro + 1 == micro_batches
                # Between optimizer steps DDP need not average: gradients accumulate locally.
                local = ddp.no_sync() if ddp is not None and not boundary else nullcontext()
                with oom_guidance(config), local:
                    with autocast(device):
                        logits = net(inputs["input_ids"], inputs["attention_mask"])
                    loss = F.cross_entropy(logits.float(), targets[batch].to(device), weight=weight)
                    scaler.scale(loss / config.grad_accum_steps).backward()
                seen += len(batch)
                if not boundary:
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
                if step % eval_every == 0 or step == total_steps:
                    improved = ranks.is_main and _validate(
                        model, tokenizer, validation, config, step, best, bar
                    )
                    # Every rank keeps its own copy of the best weights, identical under DDP.
                    if ranks.broadcast_flag(improved):
                        best.step = step
                        best.weights = _on_cpu(trainable)
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
            save(every_rank=False)
            bar.note(
                "training_interrupted",
                f"interrupted at step {step}; state saved in {states}; continue with --resume",
                step=step,
                state_dir=str(states),
            )
            raise
    # The best weights, not the last: with more than one validation they can differ.
    with torch.no_grad():
        for name, value in best.weights.items():
            trainable[name].copy_(value)
    return best


def score(
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
        batch_size=config.batch_size,
    )


def _validate(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    validation: Sequence[LabeledTitle],
    config: TrainConfig,
    step: int,
    best: Best,
    bar: Progress,
) -> bool:
    """Scores the model, logs the result, and says whether it beat the best so far."""
    model.eval()
    metrics = score(model, tokenizer, validation, config)
    model.train()
    improved = metrics["macro_f1"] > best.macro_f1
    if config.progress:
        bar.note(
            "validation",
            f"step {step}: validation macro-F1 {metrics['macro_f1']:.4f}, accuracy {metrics['accuracy']:.4f}"
            + (" (best so far)" if improved else ""),
            step=step,
            macro_f1=round(metrics["macro_f1"], 4),
            accuracy=round(metrics["accuracy"], 4),
            best_so_far=improved,
        )
    if improved:
        best.macro_f1 = metrics["macro_f1"]
    return improved


def _on_cpu(parameters: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu", copy=True) for name, p in parameters.items()}


@contextmanager
def oom_guidance(config: TrainConfig) -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError:
        raise ConfigError(
            f"the GPU ran out of memory at batch size {config.batch_size}, max length {config.max_length}: "
            f"lower --batch-size (and raise --grad-accum-steps to keep the effective batch), "
            f"or lower --max-length"
        ) from None


def batches(
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
