"""Multi-process training through torchrun: DDP (gloo on CPU, NCCL on GPU) or FSDP2 sharding.

`torchrun --nproc_per_node=N -m instructgen pretrain ...` sets RANK / WORLD_SIZE / LOCAL_RANK;
without them everything below is a no-op and training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, device: str | None = None) -> Dist:
        """Join the process group that torchrun describes in the environment (if any)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        return cls(rank=rank, world=world, local_rank=local_rank, device=dev)

    def wrap(
        self, model: nn.Module, *, fsdp: bool = False, block_types: tuple[type, ...] = ()
    ) -> nn.Module:
        """DDP, or FSDP2 (`fully_shard` on every block, then on the root) when fsdp=True."""
        if not self.enabled:
            return model
        if fsdp:
            from torch.distributed.fsdp import fully_shard

            for module in model.modules():
                if isinstance(module, block_types):
                    fully_shard(module)
            fully_shard(model)
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
