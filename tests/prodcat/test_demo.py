"""`prodcat demo`, the README's main job, run as a user runs it: a process, start to exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

# Small enough to train in seconds; 8 of the events are the demo's malformed set.
SMALL_DEMO = ["--events", "40", "--per-class", "40", "--epochs", "1", "--device", "cpu"]
SUMMARY = re.compile(r"events in (\d+), enriched out (\d+), dead-lettered (\d+)")


def brokers_in_group(group: int) -> list[int]:
    """Process ids of the Tansu brokers in a process group, wherever they were reparented to."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                in_group = os.getpgid(int(entry.name)) == group
            except OSError:
                continue
            if in_group and b"tansu" in command.split(b"\0", 1)[0]:
                pids.append(int(entry.name))
    return pids


def run_demo(work_dir: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], int]:
    """The demo's result and its process group, which holds every process it started."""
    command = [sys.executable, "-m", "prodcat.cli", "demo", "--work-dir", str(work_dir), *SMALL_DEMO]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as demo:
        try:
            stdout, stderr = demo.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(command, demo.returncode, stdout, stderr), demo.pid


def test_the_demo_accounts_for_every_event_and_leaves_no_broker_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}

    done, group = run_demo(tmp_path, env)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "embedded Tansu broker" in done.stdout
    summary = SUMMARY.search(done.stdout)
    assert summary is not None, done.stdout[-2000:]
    assert tuple(int(n) for n in summary.groups()) == (40, 32, 8)
    assert brokers_in_group(group) == []


def test_the_demo_uses_the_cluster_named_by_kafka_bootstrap_servers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    done, _ = run_demo(tmp_path, {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"to Kafka at {kafka_bootstrap}" in done.stdout
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert any(name.startswith("demo-") and name.endswith(".products.categorized") for name in topics)
