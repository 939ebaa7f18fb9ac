"""Two `prodcat consume` processes on one S3 registry (moto's server) follow promote and rollback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.source import read_topic
from prodcat.model.checkpoint import resolve
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.trainer.publish import promote, rollback
from tests.operator_env import consume_env
from tests.s3 import S3Registry, upload_version

MODEL = "product-categorizer"
WAIT_S = 120.0


def member(settings: ConsumerSettings, registry: str, work: Path) -> subprocess.Popen[bytes]:
    env = consume_env(
        settings,
        registry,
        PRODCAT_MODEL_NAME=MODEL,
        PRODCAT_RELOAD_INTERVAL_S="0.5",
        PRODCAT_CACHE_DIR=str(work / "cache"),
    )
    work.mkdir()
    with (work / "log").open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "prodcat.cli", "consume"], env=env, stdout=sink, stderr=sink
        )


def reloads_to(work: Path, version: str) -> int:
    count = 0
    for line in (work / "log").read_bytes().splitlines():
        if line.startswith(b"{"):
            event = orjson.loads(line)
            count += event.get("event") == "model_reloaded" and event.get("version") == version
    return count


def wait_until(condition: Callable[[], bool], what: str, works: list[Path]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join((w / "log").read_text()[-2000:] for w in works)
            raise AssertionError(f"{what} did not happen:\n{logs}")
        time.sleep(0.2)


def produce(settings: ConsumerSettings, prefix: str) -> None:
    produce_values(
        [orjson.dumps({"id": f"{prefix}-{n}", "title": "Pampers Baby Wipes"}) for n in range(20)], settings
    )


def test_two_members_on_an_s3_registry_follow_promote_and_rollback_and_lose_nothing(
    kafka_bootstrap: str, s3_registry: S3Registry, trained_registry: Path, tmp_path: Path
) -> None:
    registry = s3_registry.open()
    for version in ("v1", "v2"):
        upload_version(registry, resolve(trained_registry), MODEL, version, tmp_path)
    registry.move(MODEL, ["v1"], read_as=None, action="promote")
    settings = scratch_settings(
        kafka_bootstrap, "fleet", partitions=4, registry=s3_registry.uri, device="cpu"
    )
    client = kafka_client_config(settings)
    works = [tmp_path / f"member-{i}" for i in range(2)]
    members = [member(settings, s3_registry.uri, work) for work in works]
    try:
        produce(settings, "a")
        read_topic(client, settings.output_topic, expected=20, timeout_s=WAIT_S)
        promote(registry, MODEL, "v2")
        wait_until(lambda: all(reloads_to(w, "v2") == 1 for w in works), "both members on v2", works)
        produce(settings, "b")
        read_topic(client, settings.output_topic, expected=40, timeout_s=WAIT_S)
        rollback(registry, MODEL)
        wait_until(lambda: all(reloads_to(w, "v1") == 1 for w in works), "both members back on v1", works)
        produce(settings, "c")
        enriched = read_topic(client, settings.output_topic, expected=60, timeout_s=WAIT_S, settle_s=1.0)
    finally:
        for process in members:
            process.send_signal(signal.SIGTERM)
        for process in members:
            process.wait(60)

    served = {
        event["id"]: event["classification"]["model_version"]
        for event in (orjson.loads(record.value or b"") for record in enriched)
    }
    assert len(enriched) == 60 and len(served) == 60
    assert {phase: {served[f"{phase}-{n}"] for n in range(20)} for phase in "abc"} == {
        "a": {"v1"},
        "b": {"v2"},
        "c": {"v1"},
    }
    assert [process.returncode for process in members] == [0, 0]
