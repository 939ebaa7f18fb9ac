"""A registry on S3 (and S3-compatible stores), Google Cloud Storage or Azure Blob, through obstore.

obstore (Rust `object_store`) was chosen for the one feature a registry cannot do
without: conditional writes, exposed the same way for all three clouds (`mode="create"`
is If-None-Match: *, an `UpdateVersion` is If-Match on the ETag on S3 and Azure and a
generation match on GCS). Each store configures itself as its ecosystem does: for S3 the
standard `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
`AWS_REGION`, web identity (EKS IRSA), ECS/Pod Identity and instance-metadata credentials;
for GCS application default credentials; for Azure the `AZURE_STORAGE_*` variables,
workload identity or a managed identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prodcat.errors import CheckpointError, ConfigError
from prodcat.model.store import (
    Blob,
    ObjectMissing,
    StoreUnavailable,
    WriteConflict,
    temporary_staging,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig
    from obstore.store import ObjectStore as ObstoreStore

SCHEMES = ("s3", "gs", "az")
EXTRA = {"s3": "s3", "gs": "gcs", "az": "azure"}
# The client's own retries stay short: the reload state machine retries with its own backoff
# and must hear of an outage within seconds, not after object_store's default three minutes.
RETRY: RetryConfig = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}
# A weight file is one request; the default 30 s would cut off a large model on a slow link.
CLIENT_OPTIONS: ClientConfig = {"connect_timeout": "5s", "timeout": "600s"}


class ObjectStore:
    """`s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`."""

    def __init__(self, uri: str) -> None:
        scheme = uri.split("://", 1)[0]
        try:
            from obstore.store import from_url
        except ImportError:
            raise ConfigError(
                f"registry {uri} needs the object-store client: pip install 'prodcat[{EXTRA[scheme]}]'"
            ) from None
        options: ClientConfig = {**CLIENT_OPTIONS}
        # A plain-HTTP endpoint (MinIO, moto, a local Ceph) is what the user asked for by naming it.
        if scheme == "s3" and os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            options["allow_http"] = True
        try:
            self._store: ObstoreStore = from_url(uri, client_options=options, retry_config=RETRY)
        except Exception as exc:
            raise ConfigError(f"registry {uri}: {_one_line(exc)}") from None
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def conditional_writes(self) -> str | None:
        return None

    def local_root(self) -> None:
        return None

    def get(self, key: str) -> Blob | None:
        import obstore

        with self._errors(key):
            try:
                result = obstore.get(self._store, key)
            except FileNotFoundError:  # obstore's NotFoundError surfaces as the builtin
                return None
            return Blob(bytes(result.bytes()), str(result.meta["e_tag"]))

    def tag(self, key: str) -> str | None:
        import obstore

        with self._errors(key):
            try:
                return str(obstore.head(self._store, key)["e_tag"])
            except FileNotFoundError:  # obstore's NotFoundError surfaces as the builtin
                return None

    def stream(self, key: str) -> Iterator[bytes]:
        import obstore

        with self._errors(key):
            try:
                result = obstore.get(self._store, key)
            except FileNotFoundError:  # obstore's NotFoundError surfaces as the builtin
                raise ObjectMissing(f"{self._uri}/{key} does not exist") from None
            for chunk in result.stream(min_chunk_size=1 << 20):
                yield bytes(chunk)

    def children(self, prefix: str) -> list[str]:
        import obstore

        with self._errors(prefix):
            listing = obstore.list_with_delimiter(self._store, f"{prefix}/" if prefix else None)
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"])

    def put_if(self, key: str, data: bytes, *, tag: str | None) -> str:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        with self._errors(key):
            try:
                result = obstore.put(self._store, key, data, mode="create" if tag is None else {"e_tag": tag})
            except (AlreadyExistsError, PreconditionError):
                raise WriteConflict(
                    f"{self._uri}/{key} changed since it was read (another writer won)"
                ) from None
        return str(result["e_tag"])

    def staging(self, prefix: str) -> AbstractContextManager[Path]:
        return temporary_staging()

    def put_tree(self, staging: Path, prefix: str, *, last: str) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        if self.tag(f"{prefix}/{last}") is not None:
            raise CheckpointError(f"{self._uri}/{prefix} already exists; versions are never overwritten")
        files = sorted(
            p for p in staging.rglob("*") if p.is_file() and p.relative_to(staging).as_posix() != last
        )
        with self._errors(prefix):
            for path in files:
                obstore.put(self._store, f"{prefix}/{path.relative_to(staging).as_posix()}", path)
            try:
                # Created only if absent: of two publishes of one version name, one manifest lands;
                # a file the other one overwrote then fails its sha256 and is never served.
                obstore.put(self._store, f"{prefix}/{last}", (staging / last).read_bytes(), mode="create")
            except (AlreadyExistsError, PreconditionError):
                raise CheckpointError(
                    f"{self._uri}/{prefix} already exists; versions are never overwritten"
                ) from None

    def _errors(self, key: str) -> AbstractContextManager[None]:
        return _store_errors(f"{self._uri}/{key}")


@contextmanager
def _store_errors(where: str) -> Iterator[None]:
    """The client's failures as the registry's: refused access is the user's to fix; anything
    else (connection refused, timeouts, 5xx) may pass, and is StoreUnavailable."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    try:
        yield
    except CheckpointError:
        raise
    except (PermissionDeniedError, UnauthenticatedError) as exc:
        raise ConfigError(f"{where}: access refused: {_one_line(exc)}") from None
    except Exception as exc:
        raise StoreUnavailable(f"{where}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    # object_store's messages nest the whole causal chain, the response body included.
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
