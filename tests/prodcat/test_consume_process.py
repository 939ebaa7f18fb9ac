"""`prodcat consume` as an operator runs it: a process configured by environment, stopped by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.source import read_topic
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from tests.operator_env import consume_env


def test_sigterm_drains_commits_and_exits_zero(kafka_bootstrap: str, trained_registry: Path) -> None:
    settings = scratch_settings(kafka_bootstrap, "p", partitions=2)
    env = consume_env(settings, trained_registry, PRODCAT_COMMIT_INTERVAL_MS="60000")
    client = kafka_client_config(settings)
    produce_values([orjson.dumps({"id": f"s-{n}", "title": "Silk Scarf"}) for n in range(40)], settings)

    process = subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "consume"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert len(read_topic(client, settings.output_topic, expected=40, timeout_s=60)) == 40
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()

    assert process.returncode == 0, stderr[-2000:]
    # The commit interval is a minute, so these offsets were committed by the drain on SIGTERM.
    reader = Consumer({**client, "group.id": settings.group_id})
    committed = reader.committed([TopicPartition(settings.input_topic, p) for p in (0, 1)], timeout=10)
    reader.close()
    assert sum(tp.offset for tp in committed) == 40
