"""A read-only registry in a Hugging Face Hub repository: `hf://org/repo[@revision]`.

The repository holds the registry layout (`<model>/CURRENT`, `<model>/<version>/…`), as
`huggingface-cli upload` copies it from a local registry. Reads go through
huggingface_hub's file system, which takes the token and endpoint the way every Hub
client does (`HF_TOKEN`, `HF_ENDPOINT`). Promotion happens where the registry is written;
the Hub has no conditional write on a single file, so this store refuses to move a pointer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.store import CHUNK, Blob, ObjectMissing, StoreUnavailable

READ_ONLY = "a Hugging Face Hub repository is read-only to prodcat (no conditional write on a file)"


class HubStore:
    def __init__(self, uri: str) -> None:
        try:
            from huggingface_hub import HfFileSystem
        except ImportError:
            raise ConfigError(f"registry {uri} needs huggingface_hub: pip install 'prodcat[hf]'") from None
        repo, _, revision = uri.removeprefix("hf://").strip("/").partition("@")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ConfigError(f"registry {uri}: expected hf://org/repo or hf://org/repo@revision")
        self._uri = uri
        self._fs: Any = HfFileSystem()
        self._root = f"{repo}@{quote(revision, safe='')}" if revision else repo

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def conditional_writes(self) -> str | None:
        return READ_ONLY

    def local_root(self) -> None:
        return None

    def get(self, key: str) -> Blob | None:
        tag = self.tag(key)
        if tag is None:
            return None
        return Blob(b"".join(self.stream(key)), tag)

    def tag(self, key: str) -> str | None:
        try:
            info = self._fs.info(f"{self._root}/{key}")
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise StoreUnavailable(f"{self._uri}/{key}: {exc}") from None
        return str(info.get("blob_id") or info.get("last_commit") or "")

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            with self._fs.open(f"{self._root}/{key}", "rb") as handle:
                yield from iter(lambda: handle.read(CHUNK), b"")
        except FileNotFoundError:
            raise ObjectMissing(f"{self._uri}/{key} does not exist") from None
        except (CheckpointError, GeneratorExit):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"{self._uri}/{key}: {exc}") from None

    def children(self, prefix: str) -> list[str]:
        path = f"{self._root}/{prefix}" if prefix else self._root
        try:
            entries = self._fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise StoreUnavailable(f"{self._uri}/{prefix}: {exc}") from None
        return sorted(str(e["name"]).rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")

    def put_if(self, key: str, data: bytes, *, tag: str | None) -> str:
        raise CheckpointError(f"{self._uri}: {READ_ONLY}")

    def staging(self, prefix: str) -> AbstractContextManager[Path]:
        raise CheckpointError(f"{self._uri}: {READ_ONLY}")

    def put_tree(self, staging: Path, prefix: str, *, last: str) -> None:
        raise CheckpointError(f"{self._uri}: {READ_ONLY}")
