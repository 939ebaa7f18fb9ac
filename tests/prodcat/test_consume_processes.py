"""`prodcat consume --processes N`: one supervisor, N consumer-group members."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import Record, read_topic
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from tests.operator_env import consume_env

EVENTS = 120


@dataclass
class Supervised:
    process: subprocess.Popen[str]
    settings: ConsumerSettings
    pids: list[int]
    log: list[dict[str, Any]]
    """Every JSON line the supervisor and its members wrote to stderr, read until it closes."""
    log_closed: threading.Event

    def stopped_members(self) -> int:
        """How many members logged that they drained and stopped, once the stderr pipe closed."""
        assert self.log_closed.wait(60), "a member is still running"
        return sum(1 for event in self.log if event.get("event") == "consumer_stopped")


def start_supervisor(bootstrap: str, registry: Path) -> Supervised:
    """`prodcat consume --processes 2` in a process group of its own, as a terminal starts it."""
    settings = scratch_settings(bootstrap, "m", partitions=4)
    env = consume_env(settings, registry, PRODCAT_LOG_JSON="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "prodcat.cli", "consume", "--processes", "2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert process.stderr is not None
    stderr = process.stderr
    log: list[dict[str, Any]] = []
    for line in stderr:
        log.append(orjson.loads(line))
        if log[-1].get("event") == "members_started":
            break
    else:
        raise AssertionError("the supervisor never said it started its members")
    closed = threading.Event()

    def read_rest() -> None:
        # Members write to the same pipe: it must keep being read or they block on a full pipe.
        for line in stderr:
            if line.startswith("{"):
                log.append(orjson.loads(line))
        closed.set()

    threading.Thread(target=read_rest, daemon=True).start()
    return Supervised(process, settings, [int(pid) for pid in log[-1]["pids"]], log, closed)


def enrich_all(supervised: Supervised) -> list[Record]:
    """Produces EVENTS events and reads back their enriched events."""
    settings = supervised.settings
    produce_values([orjson.dumps({"id": f"e-{n}", "title": "Silk Scarf"}) for n in range(EVENTS)], settings)
    client = kafka_client_config(settings)
    return read_topic(client, settings.output_topic, expected=EVENTS, timeout_s=90, settle_s=1.0)


def committed_offsets(settings: ConsumerSettings) -> int:
    group = Consumer({**kafka_client_config(settings), "group.id": settings.group_id})
    try:
        committed = group.committed([TopicPartition(settings.input_topic, p) for p in range(4)], 10)
    finally:
        group.close()
    return sum(max(tp.offset, 0) for tp in committed)


def alive(pid: int) -> bool:
    """Still running: not gone, and not a zombie left for a parent that does not reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_two_members_share_the_input_and_each_event_is_enriched_once(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    supervised = start_supervisor(kafka_bootstrap, trained_registry)
    process = supervised.process
    try:
        assert len(supervised.pids) == 2
        enriched = enrich_all(supervised)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 0
    ids = Counter(orjson.loads(r.value or b"")["id"] for r in enriched)
    assert set(ids) == {f"e-{n}" for n in range(EVENTS)} and set(ids.values()) == {1}


def test_each_member_runs_in_a_session_of_its_own(kafka_bootstrap: str, trained_registry: Path) -> None:
    # So the terminal's signals reach the supervisor alone, and members hear them from it once:
    # two signals close together are one to Python, so a test of the drain alone rarely sees this.
    supervised = start_supervisor(kafka_bootstrap, trained_registry)
    process = supervised.process
    try:
        sessions = {os.getsid(pid) for pid in supervised.pids}
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()

    assert sessions == set(supervised.pids)


def test_one_ctrl_c_to_the_terminal_process_group_drains_every_member_once(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    supervised = start_supervisor(kafka_bootstrap, trained_registry)
    process = supervised.process
    try:
        enrich_all(supervised)
        # What a terminal does on Ctrl-C: SIGINT to every process of its foreground group.
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        process.kill()

    # A member signalled twice dies at the second signal, before it logs consumer_stopped.
    assert process.returncode == 0
    assert supervised.stopped_members() == 2
    assert committed_offsets(supervised.settings) == EVENTS


def test_members_drain_and_stop_when_the_supervisor_is_killed_outright(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    supervised = start_supervisor(kafka_bootstrap, trained_registry)
    try:
        enrich_all(supervised)
        supervised.process.kill()
        assert supervised.stopped_members() == 2
    finally:
        supervised.process.kill()
        for pid in supervised.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not any(alive(pid) for pid in supervised.pids)
    assert committed_offsets(supervised.settings) == EVENTS


def test_the_supervisor_exits_non_zero_when_a_member_dies(
    kafka_bootstrap: str, trained_registry: Path
) -> None:
    supervised = start_supervisor(kafka_bootstrap, trained_registry)
    process = supervised.process
    try:
        first, _second = supervised.pids
        os.kill(first, signal.SIGKILL)
        process.wait(timeout=90)
    finally:
        process.kill()

    assert process.returncode == 128 + signal.SIGKILL
