import urllib.request

from consumer.metrics import Metrics, serve_metrics


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
