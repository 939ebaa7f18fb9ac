"""`prodcat consume` with no broker to talk to, as an operator's log collector sees it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

WAIT_FOR_COMPLAINT_S = 30.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_stderr_line_is_a_json_object_while_no_broker_answers(
    trained_registry: Path, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
        "PRODCAT_INPUT_TOPIC": f"u-{run}.raw",
        "PRODCAT_OUTPUT_TOPIC": f"u-{run}.out",
        "PRODCAT_DEAD_LETTER_TOPIC": f"u-{run}.dlq",
        "PRODCAT_GROUP_ID": f"u-{run}",
        "PRODCAT_REGISTRY": str(trained_registry),
        "PRODCAT_DEVICE": "cpu",
        # Waits for a broker instead of exiting after --timeout: the service's own logging is the subject.
        "PRODCAT_TIMEOUT": "0",
    }
    env.pop("PRODCAT_LOG_JSON", None)
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "prodcat.cli", "consume"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            # Stopped once the service has said the broker is unreachable: by then librdkafka
            # has logged its failed connections, the lines that used to bypass the logger.
            deadline = time.monotonic() + WAIT_FOR_COMPLAINT_S
            while "broker_unreachable" not in stderr_path.read_text() and time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            process.kill()

    lines = stderr_path.read_text().splitlines()
    assert [line for line in lines if not isinstance(_json_or_none(line), dict)] == []
    assert "broker_unreachable" in {orjson.loads(line)["event"] for line in lines}


def _json_or_none(line: str) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
