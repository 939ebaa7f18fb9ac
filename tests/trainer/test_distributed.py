"""`torchrun` runs the same `prodcat train` as data-parallel processes (gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from consumer.classify.checkpoint import verify
from trainer.publish import list_versions


def test_two_cpu_processes_train_and_publish_one_checkpoint(
    corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "prodcat.cli", "train", "--data", str(corpus), "--base-model", str(tiny_base),
        "--registry", str(registry), "--full-finetune", "--lr", "1e-3", "--epochs", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    versions = list_versions(registry, "product-categorizer")
    assert len(versions) == 1
    checkpoint = verify(registry / "product-categorizer" / versions[0])
    # Both ranks report the one checkpoint that rank 0 published.
    assert done.stdout.count(f"published {checkpoint.directory}") == 2
    # Each rank saw half of every batch; together they still learn the task.
    assert checkpoint.manifest.metrics["macro_f1"] > 0.8
