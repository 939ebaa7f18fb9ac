"""Replay's progress and end: committed as it goes, so a SIGKILL mid-run re-sends little, and
it stops at the dead-letter topic's end or, where the broker's watermarks are wrong, when quiet.

The embedded broker reports every partition's end offset as 1, so a run over many letters can
only show the quiet fallback; the end-offset path is shown on a topic holding one letter, where
that report happens to be right. That letters added after the start are left for the next run
needs a broker with true watermarks and is not tested here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
from confluent_kafka import Producer
from structlog.testing import capture_logs

from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.outputs import dead_letter
from prodcat.consumer.replay import POLL_RECORDS, replay_dead_letters
from prodcat.consumer.service import kafka_client_config
from prodcat.consumer.sink import DEFAULT_MESSAGE_MAX_BYTES
from prodcat.consumer.source import read_topic
from prodcat.schemas.events import ErrorKind
from prodcat.scratch import scratch_settings

INFERENCE_FAILED = frozenset({ErrorKind.INFERENCE_FAILED})
WAIT_S = 60.0


def letters_on_topic(settings: ConsumerSettings, count: int) -> list[bytes]:
    """`count` dead letters of failed inference on the dead-letter topic; their original values."""
    originals = [orjson.dumps({"id": f"r-{n}", "title": "Silk Scarf"}) for n in range(count)]
    producer = Producer(kafka_client_config(settings))
    for offset, original in enumerate(originals):
        letter = dead_letter(
            kind=ErrorKind.INFERENCE_FAILED,
            message="RuntimeError: forward pass failed",
            topic=settings.input_topic,
            partition=0,
            offset=offset,
            key=None,
            value=original,
            headers=None,
            group=settings.group_id,
            limit=DEFAULT_MESSAGE_MAX_BYTES,
        )
        producer.produce(settings.dead_letter_topic, letter)
        producer.poll(0)
    assert producer.flush(30) == 0
    return originals


def ended_by(settings: ConsumerSettings, count: int) -> tuple[str, Counter[bytes]]:
    """How a replay run over the letters ended, and what reached the source topic."""
    with capture_logs() as logs:
        replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)
    (finished,) = [entry for entry in logs if entry["event"] == "replay_finished"]
    sent = read_topic(kafka_client_config(settings), settings.input_topic, expected=count, settle_s=1.0)
    return finished["ended_by"], Counter(r.value or b"" for r in sent)


def test_replay_ends_at_the_end_offsets_captured_at_start_when_they_are_right(
    kafka_bootstrap: str,
) -> None:
    settings = scratch_settings(kafka_bootstrap, "replay-end")
    originals = letters_on_topic(settings, 1)

    how, sent = ended_by(settings, 1)

    assert how == "end offsets"
    assert sent == Counter(originals)


def test_replay_over_wrong_watermarks_sends_every_letter_and_ends_when_the_topic_is_quiet(
    kafka_bootstrap: str,
) -> None:
    settings = scratch_settings(kafka_bootstrap, "replay-quiet")
    originals = letters_on_topic(settings, 50)

    how, sent = ended_by(settings, len(originals))

    assert how == "quiet"
    assert sent == Counter(originals)


def test_a_replay_killed_mid_run_and_run_again_loses_nothing_and_re_sends_at_most_two_polls(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = scratch_settings(kafka_bootstrap, "replay-kill")
    originals = letters_on_topic(settings, 3000)
    client = kafka_client_config(settings)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "PRODCAT_INPUT_TOPIC": settings.input_topic,
        "PRODCAT_OUTPUT_TOPIC": settings.output_topic,
        "PRODCAT_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "PRODCAT_GROUP_ID": settings.group_id,
        "PRODCAT_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "PRODCAT_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
    }
    log = tmp_path / "replay.log"
    with log.open("wb") as output:
        killed = subprocess.Popen(
            [sys.executable, "-m", "prodcat.cli", "dead-letters", "replay", "--kind", "inference_failed"],
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        at_kill = read_topic(client, settings.input_topic, expected=800, timeout_s=WAIT_S)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert len(at_kill) < len(originals), "the first run finished before it was killed"

    replay_dead_letters(settings, INFERENCE_FAILED, idle_s=2.0)

    # Reading on a moment past the count, so re-sent records do not stand in for missing ones.
    resent = read_topic(client, settings.input_topic, expected=len(originals), settle_s=1.0)
    sent = Counter(r.value for r in resent)
    assert set(sent) == set(originals), log.read_text()[-2000:]
    assert sent.total() - len(originals) <= 2 * POLL_RECORDS
