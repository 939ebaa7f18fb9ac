"""Service counters, readable in-process and as Prometheus text over HTTP."""

from __future__ import annotations

import threading
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
            "# TYPE prodcat_model_info gauge",
            f'prodcat_model_info{{version="{self.model_version}"}} 1',
        ]
        return "\n".join(lines) + "\n"


def serve_metrics(metrics: Metrics, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Starts a daemon thread answering GET /metrics; the caller shuts the server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = metrics.render_prometheus().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
