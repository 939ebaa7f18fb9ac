"""The local copy of a remote registry's checkpoints that a consumer serves from.

`<cache>/<model>/<version>/` are downloaded, checked checkpoints (see `Registry.fetch`);
`<cache>/<model>/CURRENT` names the one last served, so a consumer that starts while the
store is unreachable can serve it. Only the serving and the previous version are kept.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prodcat.model.checkpoint import CURRENT_FILE, MANIFEST_FILE, NAME_PATTERN


class CheckpointCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def remember(self, model: str, version: str) -> None:
        """Records `version` as the one served, replacing the record atomically."""
        folder = self.root / model
        folder.mkdir(parents=True, exist_ok=True)
        pending = folder / f".{CURRENT_FILE}.{os.getpid()}"
        pending.write_text(version + "\n")
        os.replace(pending, folder / CURRENT_FILE)

    def remembered(self, model: str) -> Path | None:
        """The folder of the version last served, if it is still whole in the cache."""
        try:
            version = (self.root / model / CURRENT_FILE).read_text().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        folder = self.root / model / version
        if not NAME_PATTERN.fullmatch(version) or not (folder / MANIFEST_FILE).is_file():
            return None
        return folder

    def models(self) -> list[str]:
        """Models with a version recorded as served."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CURRENT_FILE).is_file())

    def keep_only(self, model: str, versions: set[str]) -> None:
        """Removes every cached version of `model` but `versions`, and any partial download."""
        folder = self.root / model
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name not in versions:
                shutil.rmtree(entry, ignore_errors=True)
