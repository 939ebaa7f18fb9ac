"""The commit protocol under broker and process faults: a broker stalled past the session
timeout, and a consumer process killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from prodcat.broker import EmbeddedBroker
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import Record, read_topic
from prodcat.model.loading import load_model
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.testing import running_categorizer
from tests.faults import RecordingModel, Run
from tests.operator_env import consume_env

WAIT_S = 90.0
# Twice the 6 s session timeout and then some: the group certainly moves on without the member.
STALL_S = 15.0
MAX_BATCH_SIZE = 64


def events(prefix: str, count: int) -> list[bytes]:
    return [orjson.dumps({"id": f"{prefix}-{n}", "title": "Kids Rain Boots"}) for n in range(count)]


def ids_of(records: list[Record]) -> Counter[str]:
    return Counter(orjson.loads(r.value or b"")["id"] for r in records)


def wait_for_ids(settings: ConsumerSettings, wanted: set[str]) -> Counter[str]:
    """Every id emitted so far, once all of `wanted` are among them."""
    deadline = time.monotonic() + WAIT_S
    while True:
        # A moment past the count, so that duplicates are all counted.
        records = read_topic(
            kafka_client_config(settings),
            settings.output_topic,
            expected=len(wanted),
            timeout_s=WAIT_S,
            settle_s=1.0,
        )
        emitted = ids_of(records)
        if wanted <= set(emitted) or time.monotonic() > deadline:
            return emitted
        time.sleep(0.5)


@pytest.fixture(scope="module")
def plain(trained_registry: Path) -> TorchModel:
    return load_model(trained_registry, device="cpu", min_agreement=0.9)


def test_a_broker_stalled_past_the_session_timeout_is_survived_without_losing_an_event(
    trained_registry: Path, plain: TorchModel
) -> None:
    with EmbeddedBroker() as broker:
        settings = scratch_settings(
            broker.bootstrap_servers, "stall", registry=trained_registry, device="cpu"
        )
        before, after = events("before", 300), events("after", 100)
        produce_values(before, settings)
        runs: list[Run] = []
        # Slow passes, so the stall catches batches on the device and outputs unacknowledged.
        model = RecordingModel(plain, runs, delay_s=0.05)
        with capture_logs() as logs, running_categorizer(settings, model) as service:
            deadline = time.monotonic() + WAIT_S
            while service.metrics.enriched_total < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                time.sleep(STALL_S)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            produce_values(after, settings)
            wanted = {orjson.loads(v)["id"] for v in before + after}
            emitted = wait_for_ids(settings, wanted)
            # Fetching goes on while the member learns it was evicted: the rejoin can come after.
            deadline = time.monotonic() + WAIT_S
            while not rejoined([entry["event"] for entry in logs]) and time.monotonic() < deadline:
                time.sleep(0.1)

    assert wanted - set(emitted) == set()
    # The stall did what it is for: the group went on without the member, which rejoined.
    assert rejoined([entry["event"] for entry in logs])


def rejoined(events_seen: list[str]) -> bool:
    return (
        "partitions_lost" in events_seen
        and "partitions_assigned" in events_seen[events_seen.index("partitions_lost") :]
    )


def consume_process(settings: ConsumerSettings, registry: Path, log: Path) -> subprocess.Popen[bytes]:
    # Commits as soon as offsets advance: the bound below is the engine's own. At the default
    # cadence a crash re-emits up to one --commit-interval-ms of outputs more.
    env = consume_env(
        settings, registry, PRODCAT_MAX_BATCH_SIZE=str(MAX_BATCH_SIZE), PRODCAT_COMMIT_INTERVAL_MS="0"
    )
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "prodcat.cli", "consume"], env=env, stdout=sink, stderr=sink
        )


def test_after_a_sigkill_nothing_is_lost_and_no_partition_re_emits_more_than_two_batches(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path
) -> None:
    settings = scratch_settings(kafka_bootstrap, "kill", registry=trained_registry, device="cpu")
    values = events("k", 3000)
    produce_values(values, settings)
    client = kafka_client_config(settings)
    log = tmp_path / "consume.log"

    killed = consume_process(settings, trained_registry, log)
    try:
        seen_at_kill = read_topic(client, settings.output_topic, expected=600, timeout_s=WAIT_S)
    finally:
        killed.kill()
        killed.wait()
    assert len(seen_at_kill) < len(values), "the first process finished before it was killed"
    successor = consume_process(settings, trained_registry, log)
    try:
        emitted = wait_for_ids(settings, {orjson.loads(v)["id"] for v in values})
    finally:
        successor.send_signal(signal.SIGTERM)
        successor.wait(30)

    assert len(emitted) == len(values), log.read_text()[-3000:]
    partition_of = {
        orjson.loads(r.value or b"")["id"]: r.partition
        for r in read_topic(client, settings.input_topic, expected=len(values))
    }
    again = Counter({p: 0 for p in set(partition_of.values())})
    for event_id, times in emitted.items():
        again[partition_of[event_id]] += times - 1
    assert max(again.values()) <= 2 * MAX_BATCH_SIZE, again
