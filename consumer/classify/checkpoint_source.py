"""Where the serving checkpoint comes from: a local path, or a registry on a store with a cache.

A source answers three questions for the reload state machine: what does the registry
name now (`target`, cheap: a HEAD of CURRENT on an object store), give me that target as
a local folder (`fetch`, a checked download into the cache on an object store), and
this target now serves (`served`, which keeps only the serving and the previous version
in the cache and remembers the serving one for a start without the store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prodcat.errors import CheckpointError
from prodcat.model.cache import CheckpointCache
from prodcat.model.checkpoint import CURRENT_FILE, MANIFEST_FILE, resolve
from prodcat.model.registry import Registry, default_cache, is_uri, open_registry


@dataclass(frozen=True)
class Target:
    """What the registry names: `key` identifies it (a folder, or a version of a remote model)."""

    key: str
    version: str


class CheckpointSource(Protocol):
    @property
    def where(self) -> str:
        """The registry, for messages."""
        ...

    def target(self) -> Target:
        """What the registry names now; StoreUnavailable when it cannot be asked, CheckpointError
        when its pointer is refused."""
        ...

    def fetch(self, target: Target) -> Path:
        """The target as a local folder; CheckpointError when what arrived does not check out."""
        ...

    def cached(self) -> tuple[Target, Path] | None:
        """The target served last and its folder, when a copy survives on this machine."""
        ...

    def served(self, target: Target, *, previous: Target | None) -> None: ...


class PathSource:
    """A registry folder, a model folder or a checkpoint on this machine's file system."""

    def __init__(self, location: Path, model_name: str | None) -> None:
        self._location = location
        self._model_name = model_name

    @property
    def where(self) -> str:
        return str(self._location)

    def target(self) -> Target:
        directory = resolve(self._location, self._model_name)
        return Target(str(directory), directory.name)

    def fetch(self, target: Target) -> Path:
        return Path(target.key)

    def cached(self) -> None:
        # The folder is the registry itself: nothing to fall back on when it is gone.
        return None

    def served(self, target: Target, *, previous: Target | None) -> None:
        return None


class _RegistryModel:
    """A model of a registry, its name settled from the registry on first use."""

    def __init__(self, registry: Registry, model_name: str | None) -> None:
        self._registry = registry
        self._model_name = model_name
        self._model: str | None = None

    @property
    def where(self) -> str:
        return self._registry.uri

    def _model_of(self) -> str:
        if self._model is None:
            self._model = self._registry.model_name(self._model_name)
        return self._model


class RegistrySource(_RegistryModel):
    """A model of a registry on an object store, downloaded into `cache` version by version."""

    def __init__(self, registry: Registry, model_name: str | None, cache: CheckpointCache) -> None:
        super().__init__(registry, model_name)
        self._cache = cache
        # CURRENT's tag and what it named then: an unchanged tag costs one HEAD and no read.
        self._seen: tuple[str, Target] | None = None

    def target(self) -> Target:
        model = self._model_of()
        tag = self._registry.current_tag(model)
        if self._seen is not None and tag == self._seen[0]:
            return self._seen[1]
        pointer = self._registry.current(model)
        target = Target(pointer.version, pointer.version)
        self._seen = (pointer.tag, target)
        return target

    def fetch(self, target: Target) -> Path:
        return self._registry.fetch(self._model_of(), target.version, self._cache.root)

    def cached(self) -> tuple[Target, Path] | None:
        names = [self._model_name] if self._model_name is not None else self._cache.models()
        if len(names) != 1:
            return None
        folder = self._cache.remembered(names[0])
        if folder is None:
            return None
        return Target(folder.name, folder.name), folder

    def served(self, target: Target, *, previous: Target | None) -> None:
        model = self._model_of()
        self._cache.remember(model, target.version)
        self._cache.keep_only(model, {target.version} | ({previous.version} if previous else set()))


class CandidateSource(_RegistryModel):
    """A model's CANDIDATE in a registry, for the candidate's own reloader.

    `read` asks the registry (on an object store a HEAD of CANDIDATE, and a read only when its
    tag moved) and remembers the answer; `target` hands the reloader that answer without
    asking again, so the candidate costs one HEAD per poll interval however often it is polled.
    A candidate is downloaded into the same cache as the serving versions.
    """

    def __init__(self, registry: Registry, model_name: str | None, cache: Path) -> None:
        super().__init__(registry, model_name)
        self._cache = cache
        self._seen: tuple[str | None, Target | None] | None = None

    def read(self) -> Target | None:
        """The version CANDIDATE names now; None when there is none. StoreUnavailable when the
        registry cannot be asked, CheckpointError when CANDIDATE does not name a plain version."""
        model = self._model_of()
        tag = self._registry.candidate_tag(model)
        if self._seen is None or tag != self._seen[0]:
            pointer = self._registry.candidate(model) if tag is not None else None
            named = Target(pointer.version, pointer.version) if pointer is not None else None
            self._seen = (tag, named)
        return self._seen[1]

    def target(self) -> Target:
        named = self._seen[1] if self._seen is not None else None
        if named is None:
            raise CheckpointError(f"registry {self.where}: no CANDIDATE was read")
        return named

    def fetch(self, target: Target) -> Path:
        return self._registry.fetch(self._model_of(), target.version, self._cache)

    def cached(self) -> None:
        # A candidate is judged only while the registry names it: no fallback to an old copy.
        return None

    def served(self, target: Target, *, previous: Target | None) -> None:
        # The serving source decides what the cache keeps; a candidate that is promoted is
        # found there already downloaded.
        return None


def open_candidate_source(
    location: str | os.PathLike[str], *, model_name: str | None, cache_dir: Path | None
) -> CandidateSource | None:
    """The CANDIDATE of the registry at `location`; None when `location` is a checkpoint folder
    (no registry around it, so no candidate to follow)."""
    if is_uri(location):
        registry = open_registry(location)
        return CandidateSource(registry, model_name, cache_dir or default_cache(registry.uri))
    path = Path(location)
    if (path / CURRENT_FILE).is_file():
        # A model's folder: its registry is the folder above.
        return CandidateSource(open_registry(path.parent), path.name, path.parent)
    if (path / MANIFEST_FILE).is_file():
        return None
    return CandidateSource(open_registry(path), model_name, path)


def open_source(
    location: str | os.PathLike[str], *, model_name: str | None, cache_dir: Path | None
) -> CheckpointSource:
    """A PathSource for a local path, a RegistrySource (cached in `cache_dir`) for a URI."""
    if not is_uri(location):
        return PathSource(Path(location), model_name)
    registry = open_registry(location)
    return RegistrySource(registry, model_name, CheckpointCache(cache_dir or default_cache(registry.uri)))
