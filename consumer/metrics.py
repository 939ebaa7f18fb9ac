"""Service counters, readable in-process and as Prometheus text over HTTP, plus a liveness probe."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Metrics:
    consumed: int = 0
    enriched: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batched_items: int = 0
    inference_seconds: float = 0.0
    commits: int = 0
    model_version: str = ""
    # Hot reloads by result: "loaded" or "refused".
    reloads: Counter[str] = field(default_factory=Counter)
    assigned_partitions: int = 0
    # Monotonic time the main loop last came round; a loop stuck in a call stops moving it.
    loop_seen_at: float = field(default_factory=time.monotonic)

    def loop_alive(self, assigned_partitions: int) -> None:
        self.loop_seen_at = time.monotonic()
        self.assigned_partitions = assigned_partitions

    def loop_age_s(self) -> float:
        return time.monotonic() - self.loop_seen_at

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered.values())

    def render_prometheus(self) -> str:
        lines = [
            "# TYPE prodcat_events_consumed_total counter",
            f"prodcat_events_consumed_total {self.consumed}",
            "# TYPE prodcat_events_enriched_total counter",
            f"prodcat_events_enriched_total {self.enriched}",
            "# TYPE prodcat_events_dead_lettered_total counter",
            *(
                f'prodcat_events_dead_lettered_total{{kind="{kind}"}} {count}'
                for kind, count in sorted(self.dead_lettered.items())
            ),
            "# TYPE prodcat_batches_total counter",
            f"prodcat_batches_total {self.batches}",
            "# TYPE prodcat_batch_items_total counter",
            f"prodcat_batch_items_total {self.batched_items}",
            "# TYPE prodcat_inference_seconds_total counter",
            f"prodcat_inference_seconds_total {self.inference_seconds:.6f}",
            "# TYPE prodcat_offset_commits_total counter",
            f"prodcat_offset_commits_total {self.commits}",
            "# TYPE prodcat_assigned_partitions gauge",
            f"prodcat_assigned_partitions {self.assigned_partitions}",
            "# TYPE prodcat_main_loop_age_seconds gauge",
            f"prodcat_main_loop_age_seconds {self.loop_age_s():.3f}",
            "# TYPE prodcat_model_reloads_total counter",
            *(
                f'prodcat_model_reloads_total{{result="{result}"}} {self.reloads[result]}'
                for result in ("loaded", "refused")
            ),
            "# TYPE prodcat_model_info gauge",
            f'prodcat_model_info{{version="{self.model_version}"}} 1',
        ]
        return "\n".join(lines) + "\n"


def serve_metrics(
    metrics: Metrics, port: int, host: str = "0.0.0.0", *, stall_after_s: float = 120.0
) -> ThreadingHTTPServer:
    """Starts a daemon thread answering GET /metrics and GET /healthz; the caller shuts it down.

    /healthz is a liveness probe: 503 once the main loop has not come round for
    `stall_after_s` (a hung broker call or forward pass), so an orchestrator restarts the
    process; uncommitted work is then re-read, never lost.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, metrics.render_prometheus(), "text/plain; version=0.0.4")
            elif self.path == "/healthz":
                age = metrics.loop_age_s()
                if age < stall_after_s:
                    self._answer(200, "ok\n", "text/plain")
                else:
                    self._answer(503, f"main loop stalled for {age:.0f}s\n", "text/plain")
            else:
                self.send_error(404)

        def _answer(self, status: int, text: str, content_type: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
