"""`prodcat consume --processes N` end to end, timed from outside by reading the output topic.

The command runs as a subprocess exactly as an operator would start it, so this measures
whatever the supervisor does. It is timed from the first enriched event to arrive to the
last, read by a reader assigned to every output partition (no group join), and stopped
with SIGTERM (drain and commit) once every event has arrived.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from bench.streams import Pass
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.errors import DeliveryError

STOP_TIMEOUT_S = 60.0


def consume_command(settings: ConsumerSettings, registry: Path, processes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prodcat.cli",
        "consume",
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--input-topic",
        settings.input_topic,
        "--output-topic",
        settings.output_topic,
        "--dead-letter-topic",
        settings.dead_letter_topic,
        "--group-id",
        settings.group_id,
        "--session-timeout-ms",
        str(settings.session_timeout_ms),
        "--heartbeat-interval-ms",
        str(settings.heartbeat_interval_ms),
        "--registry",
        str(registry),
        "--device",
        "cpu",
        "--reload-interval-s",
        "0",
        "--processes",
        str(processes),
    ]


def shown(command: list[str]) -> str:
    """The command as a reader would type it (the interpreter named `python`)."""
    return " ".join(["python", *command[1:]])


def cli_pass(
    settings: ConsumerSettings, registry: Path, events: int, processes: int, timeout_s: float
) -> Pass:
    partitions = _partitions(settings)
    reader = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"{settings.group_id}.reader",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    reader.assign([TopicPartition(settings.output_topic, p, 0) for p in range(partitions)])
    # One torch thread per member: on a small machine more threads than cores slow every member.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        consume_command(settings, registry, processes), env=env, stdout=subprocess.DEVNULL
    )
    arrived, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while arrived < events:
            if time.monotonic() > deadline or child.poll() is not None:
                raise DeliveryError(
                    f"prodcat consume --processes {processes} delivered {arrived} of {events} events "
                    f"(exit status {child.poll()})"
                )
            records = reader.consume(num_messages=1000, timeout=0.05)
            now = time.monotonic()
            fresh = sum(1 for r in records if r.error() is None)
            if fresh:
                first = first or now
                last = now
                arrived += fresh
    finally:
        reader.close()
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return Pass(events, last - first)


def _partitions(settings: ConsumerSettings) -> int:
    probe = Consumer({**kafka_client_config(settings), "group.id": f"{settings.group_id}.probe"})
    try:
        topic = probe.list_topics(settings.output_topic, timeout=10).topics[settings.output_topic]
        return len(topic.partitions)
    finally:
        probe.close()
