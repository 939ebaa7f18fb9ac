"""HTTP probes and metrics: GET /metrics, /healthz (liveness) and /readyz (readiness).

Served from process start, before the model loads, so an orchestrator can tell a process
still starting (alive, not ready) from one that hangs (not alive: restart it; work not
committed is read again, never lost).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from prodcat.consumer.metrics import Metrics
from prodcat.errors import ConfigError


@dataclass
class Readiness:
    """What the service knows about itself; written by its threads as plain attributes."""

    model_loaded: bool = False
    broker_reachable: bool = False
    assigned_partitions: int = 0
    group_idle: bool = False
    """Joined, but the group has more members than partitions: none is ours, and that is fine."""
    waiting_for: str | None = None
    """What start-up waits on, e.g. "input topic products.raw"."""
    model_note: str | None = None
    """Where the model stands apart from loaded, e.g. served from the cache, registry unreachable."""

    def ready(self) -> tuple[bool, str]:
        """Whether to route work here, and why not (every unmet condition) or what it serves."""
        unmet = []
        if self.waiting_for is not None:
            unmet.append(f"waiting for {self.waiting_for}")
        if not self.model_loaded:
            unmet.append("model not loaded")
        if not self.broker_reachable:
            unmet.append("broker not reachable")
        if self.assigned_partitions == 0 and not self.group_idle:
            unmet.append("no partitions assigned yet")
        if unmet:
            return False, "; ".join(unmet)
        note = f"; {self.model_note}" if self.model_note else ""
        if self.assigned_partitions == 0:
            return True, f"ready: joined, the group has no partition left for this member{note}"
        return True, f"ready: {self.assigned_partitions} partitions assigned{note}"


class HealthServer:
    """A running probe server; `close()` stops it and frees its port."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="health", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def serve_health(
    metrics: Metrics,
    readiness: Readiness,
    port: int,
    host: str = "0.0.0.0",
    *,
    stall_after_s: float,
) -> HealthServer:
    """Answers on a daemon thread until closed; port 0 takes a free port (see `.port`).

    /healthz is 503 once the main loop has not come round for `stall_after_s` (a hung
    broker call or forward pass). Before the loop first comes round (model loading,
    waiting for topics) the process counts as alive: /readyz says it is not ready yet.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                self._answer(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                age = metrics.loop_age_s()
                if age is not None and age > stall_after_s:
                    self._answer(503, f"main loop stalled for {age:.0f}s\n".encode())
                elif not readiness.broker_reachable and readiness.model_loaded:
                    # Alive all the same: restarting does not bring a broker back; /readyz is 503.
                    self._answer(200, b"ok; broker not reachable\n")
                else:
                    self._answer(200, b"ok\n")
            elif path == "/readyz":
                ready, reason = readiness.ready()
                self._answer(200 if ready else 503, f"{reason}\n".encode())
            else:
                self.send_error(404)

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes arrive every few seconds; access lines would drown the service's own logs.
            return

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics and probes on {host}:{port}: {exc.strerror}") from None
    return HealthServer(server)
