"""A real S3 API for tests: moto's standalone server over HTTP, and a switch to cut it off.

The server starts once per session on a loopback port. Each test gets its own bucket and
reaches the server through an `Outage` relay, so a test can take "the store" down and
bring it back without touching the server other tests use.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from prodcat.model.checkpoint import MANIFEST_FILE
from prodcat.model.registry import Registry, open_registry

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


class Outage:
    """A TCP relay to the store; `down()` refuses every connection (and cuts open ones) until `up()`."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._down = threading.Event()
        self._cut: bytes | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self._down.set()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def up(self) -> None:
        self._down.clear()

    def cut_requests_for(self, fragment: bytes | None) -> None:
        """Resets the connection of any request whose bytes hold `fragment` (None: none), as a
        store failing part-way through a download would."""
        self._cut = fragment

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                # A reset, as a stopped server's host would answer.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            for source, sink, requests in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, requests), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            # A connection cut by `down()` ends its pump like a closed one.
            with contextlib.suppress(OSError):
                while chunk := source.recv(1 << 16):
                    cut = self._cut
                    if requests and cut is not None and cut in chunk:
                        return
                    sink.sendall(chunk)
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)


@dataclass
class S3Registry:
    """A test's registry in its own bucket (the `s3_registry` fixture)."""

    uri: str
    outage: Outage
    """The test's own way to the server: `outage.down()` makes the store unreachable."""

    def open(self) -> Registry:
        return open_registry(self.uri)


def upload_version(registry: Registry, source: Path, model: str, version: str, scratch: Path) -> None:
    """Publishes a copy of the checkpoint folder `source` as `model/version` (manifest renamed)."""
    staged = scratch / f"upload-{version}"
    shutil.copytree(source, staged)
    manifest = orjson.loads((staged / MANIFEST_FILE).read_bytes())
    (staged / MANIFEST_FILE).write_bytes(orjson.dumps({**manifest, "version": version}))
    registry.store.put_tree(staged, f"{model}/{version}", last=MANIFEST_FILE)
    shutil.rmtree(staged)


def create_bucket(endpoint: str, bucket: str) -> None:
    # moto's server accepts unsigned requests; the store under test never creates buckets.
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=10):
        pass
