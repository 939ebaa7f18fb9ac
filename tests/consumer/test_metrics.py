import time
import urllib.error
import urllib.request

from prodcat.consumer.metrics import Metrics, serve_metrics


def test_prometheus_text_reports_counters_and_dead_letters_by_kind() -> None:
    metrics = Metrics(consumed=10, enriched=7, model_version="v3")
    metrics.dead_lettered["invalid_json"] += 3
    text = metrics.render_prometheus()
    assert "prodcat_events_consumed_total 10" in text
    assert 'prodcat_events_dead_lettered_total{kind="invalid_json"} 3' in text
    assert 'prodcat_model_info{version="v3"} 1' in text


def test_metrics_are_served_over_http_at_slash_metrics() -> None:
    metrics = Metrics(enriched=5)
    server = serve_metrics(metrics, port=0, host="127.0.0.1")
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
    assert "prodcat_events_enriched_total 5" in body


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_is_ok_while_the_main_loop_comes_round() -> None:
    metrics = Metrics()
    metrics.loop_alive(assigned_partitions=3)
    server = serve_metrics(metrics, port=0, host="127.0.0.1", stall_after_s=60)
    try:
        assert get(server.server_address[1], "/healthz") == (200, "ok\n")
    finally:
        server.shutdown()


def test_healthz_answers_503_once_the_main_loop_has_stalled() -> None:
    metrics = Metrics()
    metrics.loop_seen_at = time.monotonic() - 90
    server = serve_metrics(metrics, port=0, host="127.0.0.1", stall_after_s=60)
    try:
        status, body = get(server.server_address[1], "/healthz")
    finally:
        server.shutdown()
    assert status == 503
    assert body.startswith("main loop stalled for 9")


def test_assigned_partitions_and_loop_age_are_gauges() -> None:
    metrics = Metrics()
    metrics.loop_alive(assigned_partitions=4)
    text = metrics.render_prometheus()
    assert "prodcat_assigned_partitions 4" in text
    assert "# TYPE prodcat_main_loop_age_seconds gauge" in text
