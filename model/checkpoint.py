"""Finding and verifying published checkpoints.

Registry layout: `<registry>/<model_name>/<version>/` holds one checkpoint
(`manifest.json` plus the files it lists with their sha256), and
`<registry>/<model_name>/CURRENT` names the live version. Writers replace
CURRENT atomically, so a reader sees either the old or the new name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from prodcat.errors import CheckpointError
from prodcat.schemas.manifest import CheckpointManifest

MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
# Titles with the labels the checkpoint gave them when published; a loader checks it agrees.
GOLDEN_FILE = "golden.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    directory: Path
    manifest: CheckpointManifest

    @property
    def version(self) -> str:
        return self.manifest.version


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_current(model_dir: Path) -> str:
    pointer = model_dir / CURRENT_FILE
    try:
        version = pointer.read_text().strip()
    except FileNotFoundError:
        raise CheckpointError(f"no published version: {pointer} does not exist") from None
    if not version:
        raise CheckpointError(f"{pointer} is empty")
    return version


def resolve(location: Path, model_name: str | None = None) -> Path:
    """A checkpoint directory from a checkpoint, a model's registry folder, or a registry root."""
    if (location / MANIFEST_FILE).is_file():
        return location
    if (location / CURRENT_FILE).is_file():
        return location / read_current(location)
    if model_name and (location / model_name).is_dir():
        return location / model_name / read_current(location / model_name)
    if location.is_dir():
        models = sorted(p for p in location.iterdir() if (p / CURRENT_FILE).is_file())
        if len(models) == 1:
            return models[0] / read_current(models[0])
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
    """Loads the manifest and checks every listed file against its sha256."""
    manifest = load_manifest(directory)
    for relative, expected in sorted(manifest.files.items()):
        path = directory / relative
        if not path.is_file():
            raise CheckpointError(f"checkpoint {directory} is missing {relative}")
        if file_sha256(path) != expected:
            raise CheckpointError(f"checkpoint {directory}: {relative} fails its sha256 check")
    return Checkpoint(directory=directory, manifest=manifest)
