"""Writing checkpoints into the registry and choosing which one is live.

A checkpoint is assembled in a staging folder and handed to the registry's store, which
writes its manifest last (locally: one rename), and the pointers move only through the
registry's conditional writes (`Registry.move`), so a consumer never sees a half-written
checkpoint or pointer, and two promotes never interleave.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Literal

import orjson
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from prodcat.errors import CheckpointError
from prodcat.model.checkpoint import (
    GOLDEN_FILE,
    MANIFEST_FILE,
    check_name,
    file_sha256,
)
from prodcat.model.classifier import Pooling, ProductClassifier
from prodcat.model.encode import encode
from prodcat.model.registry import HISTORY_FILE, Registry, default_cache, open_registry
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
ADAPTER_DIR = "adapter"
__all__ = ["HISTORY_FILE", "list_versions", "promote", "publish", "rollback"]

RegistryLike = Registry | str | os.PathLike[str]


def publish(
    model: ProductClassifier,
    tokenizer: PreTrainedTokenizerBase,
    *,
    registry: RegistryLike,
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
    cache: Path | None = None,
    as_candidate: bool = False,
) -> Path:
    """Writes a checkpoint with its manifest, makes it CURRENT, and returns a local folder of it.

    `as_candidate`: the version becomes the registry's CANDIDATE instead, for consumers to judge
    in their shadow; CURRENT and HISTORY do not move.

    The folder is the version's own in a local registry, and its copy in `cache` (default
    `default_cache`) for a remote one. `adapter` is a saved LoRA adapter directory, kept
    beside the merged weights as `adapter/` for users who serve adapters on a shared base.
    `golden_titles` are scored by the model as published and stored in `golden.jsonl`, so
    a reload can be checked against them. `instruction` is recorded only: `tokenizer`
    already carries it in its template (`model.encode.apply_instruction`).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    store = _registry(registry)
    _can_move(store, "publish")
    check_name("model name", model_name)
    version = version or _new_version(store, model_name)
    check_name("version", version)
    if version in store.store.children(model_name):
        raise CheckpointError(
            f"{store.uri}/{model_name}/{version} already exists; versions are never overwritten"
        )
    # Read before anything is written: a HISTORY that does not check out refuses the publish
    # instead of leaving a new version in place that never became CURRENT.
    history, history_tag = store.history(model_name) if not as_candidate else ([], None)

    prefix = f"{model_name}/{version}"
    with store.store.staging(prefix) as staging:
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
            library_versions=library_versions(RECORDED_LIBRARIES),
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
        root = store.store.local_root()
        local_copy = None
        if root is None:
            # The trainer keeps what it uploaded, as a consumer's download would leave it.
            local_copy = (cache or default_cache(store.uri)) / model_name / version
            shutil.rmtree(local_copy, ignore_errors=True)
            shutil.copytree(staging, local_copy)
        store.store.put_tree(staging, prefix, last=MANIFEST_FILE)
    if as_candidate:
        store.set_candidate(model_name, version)
    else:
        store.move(model_name, [*history, version], read_as=history_tag, action="publish")
    return root / prefix if root is not None else local_copy  # type: ignore[return-value]


def library_versions(names: Sequence[str]) -> dict[str, str]:
    """The installed version of each of `names`; one not installed (peft after a full fine-tune
    without the `train` extra) is left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = installed_version(name)
        except PackageNotFoundError:
            continue
    return versions


def promote(registry: RegistryLike, model_name: str, version: str) -> None:
    """Makes an already published version CURRENT after checking every file it lists; when it is
    the CANDIDATE, CANDIDATE is cleared (it has nothing left to be judged against)."""
    store = _registry(registry)
    _can_move(store, "promote")
    check_name("model name", model_name)
    check_name("version", version)
    store.manifest(model_name, version)  # a clear "no version" before anything else
    history, history_tag = store.history(model_name)
    store.check(model_name, version)
    store.move(model_name, [*history, version], read_as=history_tag, action="promote")
    store.clear_candidate(model_name, version)


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


def rollback(registry: RegistryLike, model_name: str) -> str:
    """Points CURRENT back at the version that was live before the current one; returns it."""
    store = _registry(registry)
    _can_move(store, "roll back")
    check_name("model name", model_name)
    current = store.current(model_name).version
    history, history_tag = store.history(model_name)
    earlier = [v for v in history if v != current]
    if not earlier:
        raise CheckpointError(f"{model_name} has no earlier live version to roll back to")
    previous = earlier[-1]
    store.check(model_name, previous)
    # The rolled-back version leaves the history, so a second rollback goes further back.
    return store.move(model_name, earlier, read_as=history_tag, action="rollback")


def list_versions(registry: RegistryLike, model_name: str) -> list[str]:
    """Published versions, sorted by name (for timestamp versions: oldest first)."""
    return _registry(registry).versions(model_name)


def _registry(registry: RegistryLike) -> Registry:
    return registry if isinstance(registry, Registry) else open_registry(registry)


def _can_move(registry: Registry, action: str) -> None:
    # Before anything is read: a store that cannot move a pointer safely is refused at once.
    refusal = registry.store.conditional_writes
    if refusal is not None:
        raise CheckpointError(f"registry {registry.uri}: cannot {action}: {refusal}")


def _cast(model: ProductClassifier, dtype: torch.dtype) -> ProductClassifier:
    # A copy, so the caller keeps its full-precision weights.
    if all(p.dtype == dtype for p in model.parameters()):
        return model
    return copy.deepcopy(model).to(dtype)


def _hash_files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _new_version(registry: Registry, model_name: str) -> str:
    taken = set(registry.store.children(model_name))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, suffix = stamp, 1
    while candidate in taken or f"{STAGING_PREFIX}{candidate}" in taken:
        suffix += 1
        candidate = f"{stamp}-{suffix}"
    return candidate
