"""`prodcat consume --processes N`: one supervisor, N consumer-group members."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import orjson

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import read_topic
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from tests.operator_env import consume_env

EVENTS = 120


def start_supervisor(bootstrap: str, registry: Path) -> tuple[subprocess.Popen[str], ConsumerSettings]:
    settings = scratch_settings(bootstrap, "m", partitions=4)
    env = consume_env(settings, registry, PRODCAT_LOG_JSON="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "consume", "--processes", "2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, settings


def member_pids(process: subprocess.Popen[str]) -> list[int]:
    """The members' pids from the supervisor's log; the rest of its log is drained behind."""
    assert process.stderr is not None
    stderr = process.stderr
    for line in stderr:
        event = orjson.loads(line)
        if event.get("event") == "members_started":
            # Members write to the same pipe: it must keep being read or they block on a full pipe.
            threading.Thread(target=stderr.read, daemon=True).start()
            return [int(pid) for pid in event["pids"]]
    raise AssertionError("the supervisor never said it started its members")


def test_two_members_share_the_input_and_each_event_is_enriched_once(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    process, settings = start_supervisor(kafka_bootstrap, trained_registry)
    try:
        assert len(member_pids(process)) == 2
        produce_values(
            [orjson.dumps({"id": f"e-{n}", "title": "Silk Scarf"}) for n in range(EVENTS)], settings
        )
        client = kafka_client_config(settings)
        enriched = read_topic(client, settings.output_topic, expected=EVENTS, timeout_s=90, settle_s=1.0)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 0
    ids = Counter(orjson.loads(r.value or b"")["id"] for r in enriched)
    assert set(ids) == {f"e-{n}" for n in range(EVENTS)} and set(ids.values()) == {1}


def test_the_supervisor_exits_non_zero_when_a_member_dies(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    process, _ = start_supervisor(kafka_bootstrap, trained_registry)
    try:
        first, _second = member_pids(process)
        os.kill(first, signal.SIGKILL)
        process.wait(timeout=90)
    finally:
        process.kill()

    assert process.returncode == 128 + signal.SIGKILL
