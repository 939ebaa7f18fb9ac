"""`prodcat consume` as an operator runs it: a process configured by environment, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import read_topic
from prodcat.consumer.topics import ensure_topics
from prodcat.produce import produce_values


def test_sigterm_drains_commits_and_exits_zero(kafka_bootstrap: str, trained_registry: Path) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRODCAT_INPUT_TOPIC": f"p-{run}.raw",
        "PRODCAT_OUTPUT_TOPIC": f"p-{run}.out",
        "PRODCAT_DEAD_LETTER_TOPIC": f"p-{run}.dlq",
        "PRODCAT_GROUP_ID": f"p-{run}",
        "PRODCAT_REGISTRY": str(trained_registry),
        "PRODCAT_DEVICE": "cpu",
        "PRODCAT_SESSION_TIMEOUT_MS": "6000",
        "PRODCAT_HEARTBEAT_INTERVAL_MS": "500",
        "PRODCAT_COMMIT_INTERVAL_MS": "60000",
    }
    settings = ConsumerSettings(
        bootstrap_servers=kafka_bootstrap,
        input_topic=env["PRODCAT_INPUT_TOPIC"],
        output_topic=env["PRODCAT_OUTPUT_TOPIC"],
        dead_letter_topic=env["PRODCAT_DEAD_LETTER_TOPIC"],
    )
    client = kafka_client_config(settings)
    ensure_topics(client, {settings.input_topic: 2, settings.output_topic: 2, settings.dead_letter_topic: 1})
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
    reader = Consumer({**client, "group.id": env["PRODCAT_GROUP_ID"]})
    committed = reader.committed([TopicPartition(settings.input_topic, p) for p in (0, 1)], timeout=10)
    reader.close()
    assert sum(tp.offset for tp in committed) == 40
