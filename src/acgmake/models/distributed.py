"""Training on several processes, GPUs or machines with PyTorch's own engine (torchrun).

``torchrun`` starts one process per GPU (or per CPU slot) and tells each its place in the
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`start` joins the process group from there (``env://``): NCCL between GPUs, gloo on
CPUs. Without those variables it is one process and nothing is started. The trainer then
wraps its networks in DistributedDataParallel (:class:`acgmake.models.train.Trainer`); only
rank 0 logs, draws samples, measures KID and writes checkpoints and the export.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from acgmake.errors import UserError


@dataclass(frozen=True)
class Place:
    """This process's place: its rank of ``world``, its GPU (``local_rank``) and device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def leader(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0


def start(device: str) -> Place:
    """Join the process group torchrun set up (or none: one process) on ``device``."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Place(device=device)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if local >= torch.cuda.device_count():
            raise UserError(
                f"process {rank} wants GPU {local}, but this machine has "
                f"{torch.cuda.device_count()}; give torchrun --nproc_per_node at most that"
            )
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend, init_method="env://")
    return Place(rank=rank, world=world, local_rank=local, device=device)


def barrier(place: Place) -> None:
    """Wait for every process (a no-op for one)."""
    import torch

    if place.world > 1:
        torch.distributed.barrier()


def stop(place: Place) -> None:
    """Leave the process group, if this run joined one."""
    import torch

    if place.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
