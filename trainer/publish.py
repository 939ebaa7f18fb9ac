"""Writing checkpoints into the registry and choosing which one is live.

A checkpoint is assembled in a hidden staging folder and renamed into place only once its
manifest is written, and CURRENT is replaced atomically, so a consumer never sees a
half-written checkpoint or a half-written pointer.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Literal

import orjson
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import (
    CURRENT_FILE,
    GOLDEN_FILE,
    MANIFEST_FILE,
    check_name,
    file_sha256,
    read_current,
    verify,
    version_directory,
)
from prodcat.model.classifier import Pooling, ProductClassifier
from prodcat.model.encode import encode
from prodcat.schemas.manifest import CheckpointManifest, TrainingRecipe

Dtype = Literal["float16", "bfloat16", "float32"]
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
}
RECORDED_LIBRARIES = ("torch", "transformers", "peft", "tokenizers")
# Hidden, so never taken for a version: check_name refuses a leading dot.
STAGING_PREFIX = ".tmp-"
HISTORY_FILE = "HISTORY"
ADAPTER_DIR = "adapter"


def publish(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    *,
    registry: Path,
    model_name: str,
    base_model: str,
    labels: Sequence[str],
    max_length: int,
    instruction: str | None,
    recipe: TrainingRecipe,
    metrics: Mapping[str, float],
    dtype: Dtype = "float16",
    version: str | None = None,
    adapter: Path | None = None,
    golden_titles: Sequence[str] = (),
) -> Path:
    """Writes a checkpoint with its manifest, makes it CURRENT, and returns its directory.

    `adapter` is a saved LoRA adapter directory, kept beside the merged weights as `adapter/`
    for users who serve adapters on a shared base. `golden_titles` are scored by the model
    as published and stored in `golden.jsonl`, so a reload can be checked against them.
    `instruction` is recorded only: `tokenizer` already carries it in its template
    (`model.encode.apply_instruction`).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    check_name("model name", model_name)
    model_dir = registry / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = version or _new_version(model_dir)
    check_name("version", version)
    final = model_dir / version
    if final.exists():
        raise CheckpointError(f"{final} already exists; versions are never overwritten")
    # Read before anything is written: a HISTORY that does not check out refuses the publish
    # instead of leaving a new version in place that never became CURRENT.
    history = _history(model_dir)

    staging = model_dir / f"{STAGING_PREFIX}{version}"
    # Whatever is there was left by a publish that crashed before its rename.
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _cast(model, DTYPES[dtype]).save(staging)
        tokenizer.save_pretrained(str(staging))
        if adapter is not None:
            shutil.copytree(adapter, staging / ADAPTER_DIR)
        if golden_titles:
            _write_golden(golden_titles, labels, max_length, model.pooling, staging)
        manifest = CheckpointManifest(
            model_name=model_name,
            version=version,
            created_at=datetime.now(UTC),
            base_model=base_model,
            labels=list(labels),
            pooling=model.pooling,
            max_length=max_length,
            dtype=dtype,
            instruction=instruction,
            instruction_in_tokenizer=instruction is not None,
            training=recipe,
            metrics=dict(metrics),
            files=_hash_files(staging),
            library_versions={name: installed_version(name) for name in RECORDED_LIBRARIES},
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
        _make_readable(staging)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _point_current(model_dir, version, history=history)
    return final


def promote(registry: Path, model_name: str, version: str) -> Path:
    """Makes an already published version CURRENT after verifying its files."""
    check_name("model name", model_name)
    check_name("version", version)
    model_dir = registry / model_name
    if not (model_dir / version / MANIFEST_FILE).is_file():
        known = ", ".join(list_versions(registry, model_name)) or "none"
        raise CheckpointError(f"{model_name} has no version {version!r} (published: {known})")
    history = _history(model_dir)
    directory = verify(version_directory(model_dir, version)).directory
    _point_current(model_dir, version, history=history)
    return directory


def _write_golden(
    titles: Sequence[str],
    labels: Sequence[str],
    max_length: int,
    pooling: Pooling,
    directory: Path,
) -> None:
    # Scored from the files just written, loaded as a CPU consumer loads them: a cast copy in
    # memory would differ slightly (its rotary buffers are rounded too).
    scorer = ProductClassifier.load(directory, dtype=torch.float32, pooling=pooling)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    with torch.inference_mode():
        batch = encode(tokenizer, titles, max_length=max_length)
        probabilities = torch.softmax(scorer(batch["input_ids"], batch["attention_mask"]), dim=-1)
    confidence, index = probabilities.max(dim=-1)
    with (directory / GOLDEN_FILE).open("wb") as handle:
        for title, i, c in zip(titles, index.tolist(), confidence.tolist(), strict=True):
            handle.write(orjson.dumps({"title": title, "label": labels[i], "confidence": c}) + b"\n")


def rollback(registry: Path, model_name: str) -> str:
    """Points CURRENT back at the version that was live before the current one; returns it."""
    check_name("model name", model_name)
    model_dir = registry / model_name
    current = read_current(model_dir)
    earlier = [v for v in _history(model_dir) if v != current]
    if not earlier:
        raise CheckpointError(f"{model_name} has no earlier live version to roll back to")
    previous = earlier[-1]
    verify(version_directory(model_dir, previous))
    # The rolled-back version leaves the history, so a second rollback goes further back.
    _write_history(model_dir, earlier)
    _point_current(model_dir, previous, history=None)
    return previous


def list_versions(registry: Path, model_name: str) -> list[str]:
    """Published versions, sorted by name (for timestamp versions: oldest first)."""
    model_dir = registry / model_name
    if not model_dir.is_dir():
        return []
    return sorted(
        p.name for p in model_dir.iterdir() if not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()
    )


def _cast(model: ProductClassifier, dtype: torch.dtype) -> ProductClassifier:
    # A copy, so the caller keeps its full-precision weights.
    if all(p.dtype == dtype for p in model.parameters()):
        return model
    return copy.deepcopy(model).to(dtype)


def _make_readable(directory: Path) -> None:
    # safetensors writes its files owner-only (0600), but the consumer usually runs as
    # another user (the image's `nobody`) over a read-only mount of the registry.
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _hash_files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _new_version(model_dir: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, suffix = stamp, 1
    while (model_dir / candidate).exists() or (model_dir / f"{STAGING_PREFIX}{candidate}").exists():
        suffix += 1
        candidate = f"{stamp}-{suffix}"
    return candidate


def _point_current(model_dir: Path, version: str, *, history: list[str] | None) -> None:
    """CURRENT -> version; with `history` (HISTORY as read before), appends version to it."""
    if history is not None:
        _write_history(model_dir, [*history, version])
    _replace_atomically(model_dir / CURRENT_FILE, version + "\n")


def _history(model_dir: Path) -> list[str]:
    """Versions in the order they became live (HISTORY), oldest first, each a plain version name."""
    path = model_dir / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        entries = path.read_text().split()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read: {exc}") from None
    return [check_name("version", entry, source=path) for entry in entries]


def _write_history(model_dir: Path, versions: list[str]) -> None:
    _replace_atomically(model_dir / HISTORY_FILE, "".join(f"{v}\n" for v in versions))


def _replace_atomically(path: Path, text: str) -> None:
    pending = path.with_name(f".{path.name}.{os.getpid()}")
    with pending.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    pending.chmod(0o644)
    os.replace(pending, path)
