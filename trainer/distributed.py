"""Data-parallel training under `torchrun`: the same command, one process per device.

`torchrun --nproc-per-node N -m prodcat.cli train ...` sets WORLD_SIZE, RANK and
LOCAL_RANK; without them training runs in one process as usual. Every rank draws the same
shuffled global batch from the shared seed and trains on its own slice; DDP averages the
gradients. Rank 0 alone validates, saves resumable state and publishes; it tells the other
ranks whether a validation improved, so each keeps its own copy of the best weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# Other ranks wait in a collective while rank 0 validates or publishes; a large validation
# split must not trip the backend's default timeout (ten minutes for NCCL).
TIMEOUT = timedelta(hours=1)


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
        """This rank's slice of a global batch, every slice the same size.

        Like DistributedSampler, a batch that does not divide evenly is padded by repeating
        its first examples, so no rank is left without examples (an empty slice has a NaN
        loss, which DDP would average into every rank's gradients).
        """
        if not self.active:
            return batch
        padded = batch[torch.arange(-(-len(batch) // self.world_size) * self.world_size) % len(batch)]
        return padded[self.rank :: self.world_size]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every rank."""
        if not self.active:
            return flag
        message = [flag]
        dist.broadcast_object_list(message, src=0)
        return bool(message[0])

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.active:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def start() -> Ranks:
    """Joins the process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=TIMEOUT)
    return ranks


def stop(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
