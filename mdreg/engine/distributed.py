"""The process's place in a (possibly) distributed run, read from the environment.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; a single
process (the default) is rank 0 of 1. The device is ``cuda:LOCAL_RANK`` when CUDA is
available, else the CPU (gloo backend).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            from mdreg.errors import UserError
            raise UserError("train.device=cuda but no CUDA device is visible; use train.device=cpu (or auto)")
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def setup(requested_device: str = "auto") -> DistEnv:
    """Read torchrun's variables and initialise the process group if there are several ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistEnv(rank, world, local_rank, device)
