"""`/readyz` and `/healthz` of a `prodcat consume` process, as an orchestrator probes them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.topics import ensure_topics
from tests.http_probe import get
from tests.operator_env import consume_env

PROBE_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        return get(port, path, timeout_s=2)
    except OSError:
        return 0, "no answer"


def wait_until(check: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while not check():
        assert process.poll() is None, "prodcat consume exited"
        assert time.monotonic() < deadline, "the probe never answered as expected"
        time.sleep(0.25)


def settings_without_topics(bootstrap: str) -> ConsumerSettings:
    suffix = str(time.monotonic_ns())
    return ConsumerSettings(
        bootstrap_servers=bootstrap,
        input_topic=f"r-{suffix}.raw",
        output_topic=f"r-{suffix}.out",
        dead_letter_topic=f"r-{suffix}.dlq",
        group_id=f"r-{suffix}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )


def start(settings: ConsumerSettings, registry: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "consume"],
        env=consume_env(settings, registry, PRODCAT_METRICS_PORT=str(port), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_consumer_started_before_its_topics_exist_becomes_ready_once_they_are_created(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    settings, port = settings_without_topics(kafka_bootstrap), free_port()
    process = start(settings, trained_registry, port)
    try:
        wait_until(lambda: "waiting for topics" in probe(port, "/readyz")[1], process)
        status, reason = probe(port, "/readyz")
        assert status == 503 and "broker not reachable" not in reason
        assert probe(port, "/healthz")[0] == 200
        ensure_topics(
            kafka_client_config(settings),
            {settings.input_topic: 2, settings.output_topic: 2, settings.dead_letter_topic: 1},
        )
        wait_until(lambda: probe(port, "/readyz")[0] == 200, process)
    finally:
        process.kill()
        process.wait()


def test_the_probes_say_the_broker_is_unreachable_while_no_broker_answers(trained_registry: Path) -> None:
    settings, port = settings_without_topics(f"127.0.0.1:{free_port()}"), free_port()
    # --timeout 0: started before its broker, it waits for one instead of exiting.
    process = start(settings, trained_registry, port, PRODCAT_TIMEOUT="0")
    try:
        # Past start-up: the service is waiting for topics it cannot even ask about.
        wait_until(lambda: "waiting for topics" in probe(port, "/readyz")[1], process)
        wait_until(lambda: "broker not reachable" in probe(port, "/readyz")[1], process)
        assert probe(port, "/readyz")[0] == 503
        assert probe(port, "/healthz") == (200, "ok; broker not reachable\n")
    finally:
        process.kill()
        process.wait()
