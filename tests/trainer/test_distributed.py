"""`torchrun` runs the same training as data-parallel processes (gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import torch

from prodcat.model.checkpoint import verify
from prodcat.trainer.distributed import Ranks
from prodcat.trainer.publish import list_versions

# Each rank trains, then writes what it returned: the checkpoint it reports and a hash of
# its model's weights.
RUNNER = """
import hashlib, os, sys
from pathlib import Path

import orjson

from prodcat.trainer.checkpointing import TrainingPaused
from prodcat.trainer.train import TrainConfig, train

settings = orjson.loads(sys.argv[1])
out = Path(settings.pop("out"))
settings.update({name: Path(settings[name]) for name in ("data", "registry")})
try:
    result = train(TrainConfig(**settings, progress=False))
except TrainingPaused:
    sys.exit(0)
digest = hashlib.sha256()
for name, value in sorted(result.model.state_dict().items()):
    digest.update(name.encode() + value.numpy().tobytes())
report = {"checkpoint": str(result.checkpoint), "weights": digest.hexdigest()}
(out / f"rank-{os.environ['RANK']}.json").write_bytes(orjson.dumps(report))
"""

Launch = Callable[..., dict[int, dict[str, str]]]


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Launch:
    """Runs the training on two CPU processes under torchrun; returns each rank's report."""
    scripts = tmp_path_factory.mktemp("ddp")
    runner = scripts / "runner.py"
    runner.write_text(RUNNER)

    def run(out: Path, **settings: object) -> dict[int, dict[str, str]]:
        out.mkdir(parents=True, exist_ok=True)
        arguments = orjson.dumps({**settings, "out": out}, default=str).decode()
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            str(runner), arguments,
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        # A paused run reports nothing.
        reports = {rank: out / f"rank-{rank}.json" for rank in (0, 1)}
        return {rank: orjson.loads(path.read_bytes()) for rank, path in reports.items() if path.is_file()}

    return run


def lora_settings(data: Path, base: Path, registry: Path, **changes: object) -> dict[str, object]:
    # LoRA (with dropout) at a rate a random tiny backbone moves at; validated four times.
    settings = {
        "data": data,
        "base_model": str(base),
        "registry": registry,
        "learning_rate": 3e-3,
        "eval_every": 16,
    }
    return {**settings, **changes}


@pytest.fixture(scope="module")
def two_ranks(
    launch: Launch, corpus: Path, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[int, dict[str, str]]]:
    registry = tmp_path_factory.mktemp("ddp-registry")
    reports = launch(tmp_path_factory.mktemp("ddp-out"), **lora_settings(corpus, tiny_base, registry))
    return registry, reports


def test_two_processes_publish_one_checkpoint_that_both_report(
    two_ranks: tuple[Path, dict[int, dict[str, str]]],
) -> None:
    registry, reports = two_ranks
    versions = list_versions(registry, "product-categorizer")
    assert len(versions) == 1
    published = verify(registry / "product-categorizer" / versions[0])
    assert {r["checkpoint"] for r in reports.values()} == {str(published.directory)}


def test_both_ranks_end_with_identical_weights(two_ranks: tuple[Path, dict[int, dict[str, str]]]) -> None:
    _, reports = two_ranks
    assert reports[0]["weights"] == reports[1]["weights"]


def test_two_processes_still_learn_the_task(two_ranks: tuple[Path, dict[int, dict[str, str]]]) -> None:
    registry, _ = two_ranks
    published = verify(registry / "product-categorizer" / list_versions(registry, "product-categorizer")[0])
    # Each rank saw half of every batch; together they learn better than chance.
    assert published.manifest.metrics["macro_f1"] > 2 / 6


@pytest.mark.slow
def test_a_resumed_two_process_run_ends_with_the_uninterrupted_weights(
    launch: Launch, corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    straight = launch(tmp_path / "a", **lora_settings(corpus, tiny_base, tmp_path / "registry-a"))
    paused = lora_settings(corpus, tiny_base, tmp_path / "registry-b", stop_after_steps=20)
    assert launch(tmp_path / "paused", **paused) == {}
    resumed = launch(tmp_path / "resumed", **{**paused, "stop_after_steps": None, "resume": True})
    assert [resumed[rank]["weights"] for rank in (0, 1)] == [straight[rank]["weights"] for rank in (0, 1)]


def test_a_batch_smaller_than_the_world_leaves_no_rank_without_examples() -> None:
    shards = [Ranks(rank, 2).shard(torch.tensor([7, 8, 9])) for rank in (0, 1)]
    assert [s.tolist() for s in shards] == [[7, 9], [8, 7]]
