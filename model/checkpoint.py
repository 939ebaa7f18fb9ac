"""Finding and verifying published checkpoints.

Registry layout: `<registry>/<model_name>/<version>/` holds one checkpoint
(`manifest.json` plus the files it lists with their sha256), and
`<registry>/<model_name>/CURRENT` names the live version. Writers replace
CURRENT atomically, so a reader sees either the old or the new name.

Nothing here trusts the registry: a pointer names a version directory of its own
model folder or is refused, and a checkpoint is exactly what its manifest lists.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import BaseModel, ValidationError

from prodcat.errors import CheckpointError, ProdcatError
from prodcat.schemas.manifest import CheckpointManifest

MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
# Titles with the labels the checkpoint gave them when published; a loader checks it agrees.
GOLDEN_FILE = "golden.jsonl"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
HEAD_FILE = "head.safetensors"
# A fast tokenizer is what serving runs (runtime.TorchModel.encode); its config says how to build it.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# Suffixes that torch.save, pickle and the Hugging Face pickle formats write. The loader
# opens safetensors only, so such a file is never unpickled by it; a checkpoint holding
# one was made by a pickle-saving tool, not by `prodcat train`, and is refused whole
# before any of its files is read rather than trusted in part.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
# transformers applies a LoRA adapter it finds beside config.json to the backbone it loads
# (and may fetch the base that adapter names); published adapters live under adapter/.
LOOSE_ADAPTER_FILE = "adapter_config.json"
# Model names and versions are single path segments: no "/" or "\", not absolute, and no
# leading "." (which would allow ".." and hides staging folders).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Checkpoint:
    directory: Path
    manifest: CheckpointManifest

    @property
    def version(self) -> str:
        return self.manifest.version


class ShardIndex(BaseModel):
    """The part of `model.safetensors.index.json` that names files: tensor -> shard."""

    weight_map: dict[str, str]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_name(kind: str, name: str, *, source: Path | None = None) -> str:
    """`name` when it is a plain model name or version; CheckpointError otherwise."""
    if NAME_PATTERN.fullmatch(name):
        return name
    where = f"{source} names " if source is not None else ""
    raise CheckpointError(
        f"{where}invalid {kind} {name!r}: use letters, digits, . _ - (not first .), at most 128"
    )


def read_current(model_dir: Path) -> str:
    """The version CURRENT names, checked to be a plain version name."""
    pointer = model_dir / CURRENT_FILE
    try:
        version = pointer.read_text().strip()
    except FileNotFoundError:
        raise CheckpointError(f"no published version: {pointer} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{pointer} cannot be read: {exc}") from None
    if not version:
        raise CheckpointError(f"{pointer} is empty")
    return check_name("version", version, source=pointer)


def version_directory(model_dir: Path, version: str) -> Path:
    """`model_dir/version`, refused unless it is a directory of the model folder itself.

    A version directory that is a symlink to somewhere else is refused too: what the
    registry serves must live in the registry.
    """
    check_name("version", version)
    directory = model_dir / version
    if not directory.is_dir():
        raise CheckpointError(f"{model_dir} has no version directory {version!r}")
    if directory.resolve().parent != model_dir.resolve():
        raise CheckpointError(f"{directory} leads outside {model_dir} (to {directory.resolve()})")
    return directory


def resolve(location: Path, model_name: str | None = None) -> Path:
    """A checkpoint directory from a checkpoint, a model's registry folder, or a registry root."""
    if (location / MANIFEST_FILE).is_file():
        return location
    if (location / CURRENT_FILE).is_file():
        return version_directory(location, read_current(location))
    if model_name and (location / check_name("model name", model_name)).is_dir():
        model_dir = location / model_name
        return version_directory(model_dir, read_current(model_dir))
    if location.is_dir():
        models = sorted(p for p in location.iterdir() if (p / CURRENT_FILE).is_file())
        if len(models) == 1:
            return version_directory(models[0], read_current(models[0]))
        if len(models) > 1:
            names = ", ".join(p.name for p in models)
            raise CheckpointError(f"{location} holds several models ({names}); name one")
    raise CheckpointError(f"no checkpoint at {location}: expected {MANIFEST_FILE} or {CURRENT_FILE}")


def load_manifest(directory: Path) -> CheckpointManifest:
    path = directory / MANIFEST_FILE
    try:
        return CheckpointManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise CheckpointError(f"{path} is not a valid manifest: {where}: {first['msg']}") from None


def verify(directory: Path) -> Checkpoint:
    """The checkpoint in `directory`, refused (CheckpointError) unless it is exactly its manifest.

    In this order, so nothing is read from a checkpoint already known to be refused:
    no pickle-format file (PICKLE_SUFFIXES) and no symlink leading out of the directory
    anywhere in it; a valid manifest; every file in the directory listed in it, and
    every file the loader opens among them; every listed file inside the directory and
    matching its sha256; every shard a sharded index names listed too.

    Every file present must be listed, not only those the loader is known to open:
    which files transformers reads (chat templates, legacy vocabularies, versioned
    tokenizer files) changes between its releases.
    """
    files = _scan(directory)
    manifest = load_manifest(directory)
    listed = set(manifest.files)
    unlisted = sorted(files - listed - {MANIFEST_FILE})
    if unlisted:
        raise CheckpointError(f"checkpoint {directory}: {', '.join(unlisted)} not listed in its manifest")
    missing = sorted(_loader_files(listed) - listed)
    if missing:
        raise CheckpointError(
            f"checkpoint {directory}: its manifest does not list {', '.join(missing)} "
            "(every file the loader opens must be listed)"
        )
    for relative, expected in sorted(manifest.files.items()):
        path = directory / relative
        if not path.is_file():
            raise CheckpointError(f"checkpoint {directory} is missing {relative}")
        if not path.resolve().is_relative_to(directory.resolve()):
            raise CheckpointError(f"checkpoint {directory}: {relative} leads outside the checkpoint")
        if file_sha256(path) != expected:
            raise CheckpointError(f"checkpoint {directory}: {relative} fails its sha256 check")
    if WEIGHTS_INDEX_FILE in listed:
        unlisted_shards = sorted(_shards(directory) - listed)
        if unlisted_shards:
            raise CheckpointError(
                f"checkpoint {directory}: {WEIGHTS_INDEX_FILE} names shards its manifest does not list: "
                f"{', '.join(unlisted_shards)}"
            )
    return Checkpoint(directory=directory, manifest=manifest)


def check_same_labels(serving: CheckpointManifest, candidate: CheckpointManifest) -> None:
    """Refuses a reload that would change the label set the service emits.

    Consumers of the output topic act on label names, so new names appearing mid-stream
    is a change for them too. The order may differ: each checkpoint maps its own outputs
    to names through its own manifest.
    """
    added = sorted(set(candidate.labels) - set(serving.labels))
    removed = sorted(set(serving.labels) - set(candidate.labels))
    if added or removed:
        change = [f"added {', '.join(added)}"] if added else []
        change += [f"removed {', '.join(removed)}"] if removed else []
        raise CheckpointError(
            f"checkpoint {candidate.model_name} {candidate.version}: labels differ from the serving "
            f"{serving.version} ({'; '.join(change)}): a label change needs a deliberate restart"
        )


class LoadInterrupted(ProdcatError):
    """Loading failed for a reason outside the checkpoint (memory, an I/O error): try again."""


def load_failure(directory: Path, what: str, exc: BaseException) -> ProdcatError:
    """One line for a library's error while reading verified files, which may span many.

    Running out of memory or an I/O error (an OSError with an errno, unlike the ones
    libraries raise about file contents) says nothing about the checkpoint, so it is a
    LoadInterrupted, which a reload retries, rather than a CheckpointError, which refuses.
    """
    detail = " ".join(str(exc).split()) or "no detail given"
    message = f"checkpoint {directory}: {what} does not load: {type(exc).__name__}: {detail}"
    if is_transient(exc):
        return LoadInterrupted(message)
    return CheckpointError(message)


def is_transient(exc: BaseException) -> bool:
    """Out of memory (host or device) or an operating-system I/O error."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, OSError) and exc.errno is not None


def _scan(directory: Path) -> set[str]:
    """Relative paths of the files under `directory`, refusing pickles and escaping links."""
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory} is not a directory")
    root = directory.resolve()
    found: set[str] = set()
    for parent, dirnames, filenames in os.walk(directory, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(parent, name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise CheckpointError(
                    f"checkpoint {directory}: {path.relative_to(directory).as_posix()} is a link to "
                    f"{path.resolve()}, outside the checkpoint"
                )
        for name in filenames:
            relative = Path(parent, name).relative_to(directory).as_posix()
            if Path(name).suffix.lower() in PICKLE_SUFFIXES:
                raise CheckpointError(
                    f"checkpoint {directory} holds pickle-format weights ({relative}); "
                    "only safetensors checkpoints are loaded"
                )
            found.add(relative)
    if LOOSE_ADAPTER_FILE in found:
        raise CheckpointError(
            f"checkpoint {directory} holds {LOOSE_ADAPTER_FILE} beside its weights: the backbone loader "
            "would apply that adapter; published adapters belong under adapter/"
        )
    return found


def _loader_files(listed: set[str]) -> set[str]:
    weights = (
        WEIGHTS_INDEX_FILE if WEIGHTS_INDEX_FILE in listed and WEIGHTS_FILE not in listed else WEIGHTS_FILE
    )
    return {CONFIG_FILE, weights, HEAD_FILE, *TOKENIZER_FILES}


def _shards(directory: Path) -> set[str]:
    path = directory / WEIGHTS_INDEX_FILE
    try:
        index = ShardIndex.model_validate(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise load_failure(directory, WEIGHTS_INDEX_FILE, exc) from None
    return set(index.weight_map.values())
