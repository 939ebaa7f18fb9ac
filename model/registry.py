"""The registry layout on any store: versions, the CURRENT, HISTORY and CANDIDATE pointers, downloads.

`open_registry(location)` is the one way in: a local path, `s3://bucket/prefix`,
`gs://bucket/prefix`, `az://container/prefix`, or read-only `hf://org/repo[@revision]`.

Who writes what, in which order:
- a publish assembles a version in a staging folder and hands it to the store, which
  writes every file and the manifest last (locally: one rename); a version is never
  overwritten, and one without a manifest is invisible to readers;
- a promote or rollback writes HISTORY with a conditional write on the tag it read (the
  one point where two writers are ordered: the loser changes nothing and is told), then
  brings CURRENT to HISTORY's last entry with conditional writes, re-reading both until
  they agree, so a slower writer can never leave CURRENT behind a newer HISTORY.
- a candidate publish, or a promote of the candidate, rewrites CANDIDATE with a conditional
  write on the tag it read; a cleared CANDIDATE is an empty object (stores here have no
  delete), read as "no candidate".
Serving readers read CURRENT; shadows read CANDIDATE; a pointer is one small object, replaced whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.checkpoint import (
    CURRENT_FILE,
    LOOSE_ADAPTER_FILE,
    MANIFEST_FILE,
    PICKLE_SUFFIXES,
    check_name,
    resolve,
    verify,
    version_directory,
)
from prodcat.model.store import Blob, LocalStore, ObjectMissing, RegistryStore, WriteConflict
from prodcat.schemas.manifest import CheckpointManifest

HISTORY_FILE = "HISTORY"
CANDIDATE_FILE = "CANDIDATE"
SCHEMES = ("s3", "gs", "az", "hf")
# CURRENT is re-aimed at HISTORY's last entry until both agree; each round is one lost race
# against a newer writer, so a handful of rounds is plenty.
SETTLE_ROUNDS = 8


def open_registry(location: str | os.PathLike[str]) -> Registry:
    """The registry at a local path or a store URI; ConfigError (one line) for a URI it cannot open."""
    text = os.fspath(location)
    scheme, found, _ = text.partition("://")
    if not found:
        return Registry(LocalStore(Path(text)))
    if scheme in ("s3", "gs", "az"):
        from prodcat.model.object_store import ObjectStore

        return Registry(ObjectStore(text))
    if scheme == "hf":
        from prodcat.model.hub_store import HubStore

        return Registry(HubStore(text))
    known = ", ".join(f"{s}://" for s in SCHEMES)
    raise ConfigError(f"registry {text}: unsupported scheme {scheme}:// (use a path or {known})")


def is_uri(location: str | os.PathLike[str]) -> bool:
    return "://" in os.fspath(location)


@dataclass(frozen=True)
class Pointer:
    version: str
    tag: str


class Registry:
    """`<model>/<version>/` checkpoints, `<model>/CURRENT`, `<model>/HISTORY` and `<model>/CANDIDATE`,
    on one store."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    @property
    def uri(self) -> str:
        return self.store.uri

    def model_name(self, name: str | None) -> str:
        """`name`, checked; or the registry's only model when None."""
        if name is not None:
            return check_name("model name", name)
        models = [m for m in self.store.children("") if self.store.tag(f"{m}/{CURRENT_FILE}") is not None]
        if len(models) == 1:
            return models[0]
        if not models:
            raise CheckpointError(f"registry {self.uri} has no published model (no <model>/{CURRENT_FILE})")
        raise CheckpointError(f"registry {self.uri} holds several models ({', '.join(models)}); name one")

    def current(self, model: str) -> Pointer:
        """The version CURRENT names, with CURRENT's tag; CheckpointError when there is none."""
        blob = self.store.get(f"{model}/{CURRENT_FILE}")
        where = f"{self.uri}/{model}/{CURRENT_FILE}"
        if blob is None:
            raise CheckpointError(f"no published version: {where} does not exist")
        try:
            version = blob.data.decode().strip()
        except UnicodeDecodeError:
            raise CheckpointError(f"{where} is not text") from None
        if not version:
            raise CheckpointError(f"{where} is empty")
        check_name("version", version)
        return Pointer(version, blob.tag)

    def current_tag(self, model: str) -> str | None:
        """CURRENT's tag alone: the cheap question a consumer asks every poll."""
        return self.store.tag(f"{model}/{CURRENT_FILE}")

    def candidate(self, model: str) -> Pointer | None:
        """The version CANDIDATE names, with CANDIDATE's tag; None when there is no candidate
        (no CANDIDATE, or one cleared to empty)."""
        blob = self.store.get(f"{model}/{CANDIDATE_FILE}")
        if blob is None:
            return None
        where = f"{self.uri}/{model}/{CANDIDATE_FILE}"
        try:
            version = blob.data.decode().strip()
        except UnicodeDecodeError:
            raise CheckpointError(f"{where} is not text") from None
        if not version:
            return None
        check_name("version", version)
        return Pointer(version, blob.tag)

    def candidate_tag(self, model: str) -> str | None:
        """CANDIDATE's tag alone (a HEAD on an object store): what a consumer asks every poll."""
        return self.store.tag(f"{model}/{CANDIDATE_FILE}")

    def set_candidate(self, model: str, version: str) -> None:
        """Points CANDIDATE at a published `version`; CURRENT and HISTORY are left as they are.

        WriteConflict when CANDIDATE changed between its read and the write (another writer won).
        """
        self._refuse_unsafe_writes("set the candidate")
        self.manifest(model, version)  # a clear "no version" before anything is written
        self._write_candidate(model, version, self.store.get(f"{model}/{CANDIDATE_FILE}"))

    def clear_candidate(self, model: str, version: str) -> bool:
        """Clears CANDIDATE if it still names `version` (a promote of it); True when it did.

        A CANDIDATE that names another version (a newer candidate published meanwhile) stays.
        """
        self._refuse_unsafe_writes("clear the candidate")
        blob = self.store.get(f"{model}/{CANDIDATE_FILE}")
        if blob is None or blob.data.decode(errors="replace").strip() != version:
            return False
        self._write_candidate(model, None, blob)
        return True

    def _write_candidate(self, model: str, version: str | None, read: Blob | None) -> None:
        try:
            self.store.put_if(
                f"{model}/{CANDIDATE_FILE}",
                b"" if version is None else _lines([version]),
                tag=None if read is None else read.tag,
            )
        except WriteConflict:
            raise WriteConflict(
                f"registry {self.uri}: {model}/{CANDIDATE_FILE} changed while it was being written "
                "(another writer won); nothing was written: look again with `prodcat registry list`"
            ) from None

    def _refuse_unsafe_writes(self, action: str) -> None:
        refusal = self.store.conditional_writes
        if refusal is not None:
            raise CheckpointError(f"registry {self.uri}: cannot {action}: {refusal}")

    def versions(self, model: str) -> list[str]:
        """Published versions (those with a manifest), sorted by name: timestamps oldest first."""
        check_name("model name", model)
        names = [n for n in self.store.children(model) if not n.startswith(".")]
        return [n for n in names if self.store.tag(f"{model}/{n}/{MANIFEST_FILE}") is not None]

    def manifest(self, model: str, version: str) -> CheckpointManifest:
        return self._manifest(model, version)[0]

    def _manifest(self, model: str, version: str) -> tuple[CheckpointManifest, bytes]:
        """The version's manifest, parsed, and its bytes as stored."""
        check_name("model name", model)
        check_name("version", version)
        blob = self.store.get(f"{model}/{version}/{MANIFEST_FILE}")
        if blob is None:
            known = ", ".join(self.versions(model)) or "none"
            raise CheckpointError(f"{model} has no version {version!r} (published: {known})")
        try:
            return CheckpointManifest.model_validate_json(blob.data), blob.data
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "document"
            where = f"{self.uri}/{model}/{version}/{MANIFEST_FILE}"
            raise CheckpointError(f"{where} is not a valid manifest: {field}: {first['msg']}") from None

    def history(self, model: str) -> tuple[list[str], str | None]:
        """HISTORY's versions, oldest first, and its tag (None when there is no HISTORY yet)."""
        blob = self.store.get(f"{model}/{HISTORY_FILE}")
        if blob is None:
            return [], None
        where = f"{self.uri}/{model}/{HISTORY_FILE}"
        try:
            entries = blob.data.decode().split()
        except UnicodeDecodeError:
            raise CheckpointError(f"{where} is not text") from None
        return [check_name("version", entry, source=Path(where)) for entry in entries], blob.tag

    def move(self, model: str, history: list[str], *, read_as: str | None, action: str) -> str:
        """Writes `history` (computed from HISTORY as read with tag `read_as`), then CURRENT.

        Returns the version now CURRENT. WriteConflict when HISTORY changed since it was
        read: another promote or rollback won, and nothing was written.
        """
        self._refuse_unsafe_writes(action)
        try:
            self.store.put_if(f"{model}/{HISTORY_FILE}", _lines(history), tag=read_as)
        except WriteConflict:
            raise WriteConflict(
                f"registry {self.uri}: {model} changed while this {action} ran (another promote or "
                "rollback won); nothing was written: look again with `prodcat registry list`"
            ) from None
        return self._settle_current(model)

    def _settle_current(self, model: str) -> str:
        for _ in range(SETTLE_ROUNDS):
            history, _ = self.history(model)
            target = history[-1]
            pointer = self.store.get(f"{model}/{CURRENT_FILE}")
            if pointer is not None and pointer.data.decode(errors="replace").strip() == target:
                return target
            try:
                self.store.put_if(
                    f"{model}/{CURRENT_FILE}", _lines([target]), tag=None if pointer is None else pointer.tag
                )
            except WriteConflict:
                continue
        raise WriteConflict(
            f"registry {self.uri}: {model}/{CURRENT_FILE} kept changing under concurrent promotes; "
            f"run `prodcat registry list` and promote again"
        )

    def fetch(self, model: str, version: str, cache: Path) -> Path:
        """A local folder holding `version`: in place for a local registry, else downloaded.

        A download goes into `cache/<model>/.partial-<version>`, every file checked against
        the manifest's sha256 as it arrives, and is renamed into `cache/<model>/<version>`
        only when all of it checked out: a partial or tampered download is never used.
        The loader verifies the folder again before reading it.
        """
        check_name("model name", model)
        check_name("version", version)
        root = self.store.local_root()
        if root is not None:
            return version_directory(root / model, version)
        final = cache / model / version
        if (final / MANIFEST_FILE).is_file():
            return final
        manifest, manifest_bytes = self._manifest(model, version)
        files = manifest.files
        _refuse_unsafe_names(f"{self.uri}/{model}/{version}", files)
        partial = cache / model / f".partial-{version}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            for relative, expected in sorted(files.items()):
                self._download(f"{model}/{version}/{relative}", partial / relative, expected)
            (partial / MANIFEST_FILE).write_bytes(manifest_bytes)
            partial.rename(final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return final

    def check(self, model: str, version: str) -> CheckpointManifest:
        """The version's manifest once every file it lists checks out where it is stored.

        A writer's check before it makes a version live: a local folder is verified in place;
        on a store every listed object is read and hashed, never a cached copy, which could
        be older than what readers would download.
        """
        check_name("model name", model)
        check_name("version", version)
        root = self.store.local_root()
        if root is not None:
            return verify(version_directory(root / model, version)).manifest
        manifest, _ = self._manifest(model, version)
        _refuse_unsafe_names(f"{self.uri}/{model}/{version}", manifest.files)
        for relative, expected in sorted(manifest.files.items()):
            self._hash_into(f"{model}/{version}/{relative}", expected, None)
        return manifest

    def _download(self, key: str, path: Path, expected: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            self._hash_into(key, expected, handle.write)

    def _hash_into(self, key: str, expected: str, write: Callable[[bytes], object] | None) -> None:
        digest = hashlib.sha256()
        try:
            for chunk in self.store.stream(key):
                digest.update(chunk)
                if write is not None:
                    write(chunk)
        except ObjectMissing:
            raise CheckpointError(f"checkpoint {self.uri}/{key.rsplit('/', 1)[0]} is missing {key}") from None
        if digest.hexdigest() != expected:
            raise CheckpointError(f"checkpoint {self.uri}: {key} fails its sha256 check")


def checkpoint_directory(
    location: str | os.PathLike[str], *, model_name: str | None = None, cache: Path | None = None
) -> Path:
    """A local checkpoint folder for `location`, the way every command names a model.

    A local path may be a checkpoint, a model's registry folder or a registry root (as
    before); a URI is a registry whose CURRENT version is downloaded into `cache`
    (default `default_cache()`) and checked against its manifest.
    """
    if not is_uri(location):
        return resolve(Path(location), model_name)
    registry = open_registry(location)
    model = registry.model_name(model_name)
    return registry.fetch(model, registry.current(model).version, cache or default_cache(registry.uri))


def default_cache(uri: str) -> Path:
    """`$XDG_CACHE_HOME/prodcat/registry/<hash of the URI>`: one folder per registry."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "prodcat" / "registry" / hashlib.sha256(uri.encode()).hexdigest()[:16]


def _refuse_unsafe_names(where: str, files: dict[str, str]) -> None:
    # Checked before a byte is downloaded: a path that climbs would be written outside the cache.
    for relative in files:
        path = PurePosixPath(relative)
        if path.is_absolute() or ".." in path.parts or "\\" in relative or not relative:
            raise CheckpointError(
                f"checkpoint {where}: its manifest names {relative!r}, outside the checkpoint"
            )
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise CheckpointError(
                f"checkpoint {where} holds pickle-format weights ({relative}); "
                "only safetensors checkpoints are loaded"
            )
        if relative == LOOSE_ADAPTER_FILE:
            raise CheckpointError(f"checkpoint {where} holds {LOOSE_ADAPTER_FILE} beside its weights")


def _lines(versions: list[str]) -> bytes:
    return "".join(f"{v}\n" for v in versions).encode()
