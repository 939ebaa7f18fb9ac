"""Data-parallel training under `torchrun`: the same command, one process per device.

`torchrun --nproc-per-node N -m prodcat.cli train ...` sets WORLD_SIZE, RANK and
LOCAL_RANK; without them training runs in one process as usual. Every rank draws the same
shuffled global batch from the shared seed and trains on its own slice; DDP averages the
gradients. Rank 0 alone validates, saves resumable state and publishes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch."""
        return batch[self.rank :: self.world_size] if self.active else batch

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def start() -> Ranks:
    """Joins the process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank)
    return ranks


def stop(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
