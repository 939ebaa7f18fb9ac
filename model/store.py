"""Where a registry's bytes live: the store contract, its errors, and the local file system.

A registry needs few operations of its storage, and the only subtle one is the
conditional write: `CURRENT` and `HISTORY` change only when they still carry the tag
(ETag) the writer read, so two promotes cannot interleave and a reader sees either the
old or the new pointer, never half of one. Version folders are written once and never
again (`put_tree`), their manifest last, so a version without a manifest is one still
being written and readers skip it.

Keys are `/`-separated paths relative to the registry root (`model/version/file`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prodcat.errors import CheckpointError, ProdcatError

CHUNK = 1 << 20


class StoreUnavailable(ProdcatError):
    """The store did not answer or failed on its side (network, 5xx, throttling): try again later."""


class WriteConflict(CheckpointError):
    """A conditional write lost: the object changed since it was read (another writer won)."""


class ObjectMissing(CheckpointError):
    """A key the registry layout promises is not in the store."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    tag: str
    """The store's version tag for exactly these bytes (an ETag on object stores)."""


class RegistryStore(Protocol):
    """The operations a registry needs of its storage."""

    @property
    def uri(self) -> str:
        """Where the registry is, as the user wrote it (for messages)."""
        ...

    @property
    def conditional_writes(self) -> str | None:
        """None when `put_if` is safe; else why this store cannot move a pointer safely."""
        ...

    def local_root(self) -> Path | None:
        """The registry's folder when it is on this machine's file system, else None."""
        ...

    def get(self, key: str) -> Blob | None:
        """A small object (a pointer, a manifest) with its tag; None when there is none."""
        ...

    def tag(self, key: str) -> str | None:
        """The object's tag without its bytes (a HEAD request); None when there is none."""
        ...

    def stream(self, key: str) -> Iterator[bytes]:
        """A large object in chunks; ObjectMissing when there is none."""
        ...

    def children(self, prefix: str) -> list[str]:
        """Names of the folders directly under `prefix` (`""` for the root)."""
        ...

    def put_if(self, key: str, data: bytes, *, tag: str | None) -> str:
        """Writes `data` only if the object still carries `tag` (None: only if there is none).

        Returns the new tag; WriteConflict when another writer changed it first.
        """
        ...

    def staging(self, prefix: str) -> AbstractContextManager[Path]:
        """A fresh local folder to assemble a new version in; removed afterwards, whatever happens."""
        ...

    def put_tree(self, staging: Path, prefix: str, *, last: str) -> None:
        """Publishes the staged folder as `prefix`, the file `last` after every other one.

        CheckpointError when something is already there: versions are never overwritten.
        """
        ...


class LocalStore:
    """A registry folder: versions renamed into place, pointers replaced with a rename.

    The conditional write holds an exclusive lock on the pointer's folder while it
    compares and replaces, so writers on one machine (or on a shared file system that
    honours flock) serialise. The tag is the file's inode and modification time: a
    rename always makes a new inode, so a replaced pointer never carries an old tag.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def uri(self) -> str:
        return str(self._root)

    @property
    def conditional_writes(self) -> str | None:
        return None

    def local_root(self) -> Path:
        return self._root

    def get(self, key: str) -> Blob | None:
        path = self._root / key
        try:
            with path.open("rb") as handle:
                return Blob(handle.read(), _file_tag(os.fstat(handle.fileno())))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def tag(self, key: str) -> str | None:
        try:
            return _file_tag((self._root / key).stat())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            handle = (self._root / key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(f"{self._root / key} does not exist") from None
        with handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    def children(self, prefix: str) -> list[str]:
        folder = self._root / prefix
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def put_if(self, key: str, data: bytes, *, tag: str | None) -> str:
        path = self._root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent):
            if self.tag(key) != tag:
                raise WriteConflict(f"{path} changed since it was read (another writer won)")
            pending = path.with_name(f".{path.name}.{os.getpid()}")
            with pending.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            pending.chmod(0o644)
            os.replace(pending, path)
            return _file_tag(path.stat())

    @contextmanager
    def staging(self, prefix: str) -> Iterator[Path]:
        # Beside its final place, so publishing it is one rename on the same file system;
        # hidden, so never taken for a version (names never start with a dot).
        final = self._root / prefix
        final.parent.mkdir(parents=True, exist_ok=True)
        folder = final.with_name(f".tmp-{final.name}")
        # Whatever is there was left by a publish that crashed before its rename.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def put_tree(self, staging: Path, prefix: str, *, last: str) -> None:
        # `last` needs no ordering here: the rename publishes every file at once.
        final = self._root / prefix
        if final.exists():
            raise CheckpointError(f"{final} already exists; versions are never overwritten")
        _make_readable(staging)
        staging.rename(final)


def _file_tag(stat: os.stat_result) -> str:
    return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    # The folder itself is locked, so no lock file appears in the registry.
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_readable(directory: Path) -> None:
    # safetensors writes its files owner-only (0600), but the consumer usually runs as
    # another user (the image's `nobody`) over a read-only mount of the registry.
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def temporary_staging() -> Iterator[Path]:
    """A scratch folder for stores whose versions are uploaded from local files."""
    with tempfile.TemporaryDirectory(prefix="prodcat-publish-") as folder:
        yield Path(folder)
