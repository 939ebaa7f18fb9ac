"""Resumable training state: what an interrupted run needs to continue exactly where it was.

Saved atomically (temp file, fsync, rename) at optimizer-step boundaries, so a crash
mid-save leaves the previous state intact. It holds the trainable parameters (LoRA
adapters and head, or everything in a full fine-tune), the optimizer, scheduler and
gradient-scaler states, the random-number states of every rank (CPU and CUDA, for
dropout), the step count and the best weights validated so far. The data order is not
saved: it is regenerated from the seed, and the batches already trained on are skipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from prodcat.errors import ConfigError, ProdcatError

STATE_DIR = ".train-state"
STATE_FILE = "state.pt"


class TrainingPaused(ProdcatError):
    """Training stopped early on purpose (a step budget) with its state saved for --resume."""


def state_dir(registry: Path | str, model_name: str, override: Path | None = None) -> Path:
    """`override` when given, else `<registry>/<model_name>/.train-state` for a local registry,
    and beside the registry's download cache for a remote one (state is saved often: keep it local)."""
    if override is not None:
        return override
    if "://" in str(registry):
        from prodcat.model.registry import default_cache

        # Beside the download cache, not in it: the cache keeps only checkpoint versions.
        cache = default_cache(str(registry))
        return cache.parent.parent / "train-state" / cache.name / model_name
    return Path(registry) / model_name / STATE_DIR


def fingerprint(settings: dict[str, Any]) -> str:
    """What must match for a resumed run to continue the same run."""
    return hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()


def rng_state() -> dict[str, Any]:
    """This process's torch random-number states: the CPU generator and every CUDA device's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pending = directory / f".{STATE_FILE}.{os.getpid()}"
    with pending.open("wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pending, directory / STATE_FILE)


def load_state(directory: Path, expected_fingerprint: str) -> dict[str, Any]:
    path = directory / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"nothing to resume: {path} does not exist")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as exc:
        raise ConfigError(f"training state {path} is unreadable: {exc}") from None
    if state.get("fingerprint") != expected_fingerprint:
        raise ConfigError(
            f"{path} belongs to a different run (data, base model or recipe changed); "
            "start without --resume or restore the original settings"
        )
    return state


def clear_state(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)
