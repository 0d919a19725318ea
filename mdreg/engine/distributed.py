"""The process's place in a (possibly) distributed run, read from the environment.

:func:`setup` detects where it runs, in this order:

1. **torchrun** (or any launcher that sets ``RANK`` and ``WORLD_SIZE``, plus
   ``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``);
2. **a task of a Slurm job step** (``SLURM_PROCID`` set and ``SLURM_STEP_NUM_TASKS`` > 1:
   ``srun`` sets the latter, e.g. in a submitit job with ``tasks_per_node`` > 1; the batch
   shell of an ``--ntasks`` job has ``SLURM_NTASKS`` but no step, and must not wait for
   ranks that never come): submitit's ``TorchDistributedEnvironment`` turns the
   Slurm variables into torch's (``MASTER_ADDR`` = first host of the job, ``MASTER_PORT``
   derived from the job id unless set), see :func:`setup_from_slurm`;
3. otherwise a single process: rank 0 of 1. A lone Slurm task (or a shell inside an
   allocation, whose leaked ``SLURM_*`` variables must not matter) is this case.

The device is ``cuda:LOCAL_RANK`` when CUDA is available and the process sees several
GPUs, ``cuda:0`` when it sees one (Slurm bound one GPU per task), else the CPU. Several
ranks initialise the default process group (NCCL on GPUs, gloo on the CPU).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mdreg.errors import UserError

DEFAULT_TIMEOUT_S = 600  # train.collective_timeout_s


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    source: str = "single"  # single | torchrun | slurm

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
            raise UserError("train.device=cuda but no CUDA device is visible; use train.device=cpu (or auto)")
        count = torch.cuda.device_count()
        if count > 1 and local_rank >= count:
            raise UserError(f"local rank {local_rank} but only {count} GPUs are visible; start one process per GPU")
        return torch.device("cuda", local_rank if count > 1 else 0)
    return torch.device(requested)


def detect() -> str:
    """``torchrun``, ``slurm`` or ``single`` (see the module docstring)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return "torchrun"
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
        return "slurm"
    return "single"


def export_slurm() -> None:
    """Set torch's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from
    the Slurm job, through submitit. Overwrites values leaked from a parent job
    (submitit #1782) and leaves CUDA_VISIBLE_DEVICES alone (:func:`pick_device` handles
    both one-GPU-per-task and all-GPUs-per-node bindings)."""
    from submitit.helpers import TorchDistributedEnvironment

    # submitit recognises its Slurm job environment by SUBMITIT_EXECUTOR (set in its jobs);
    # a plain ``srun python tools/launch.py ...`` task is the same environment.
    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def setup(requested_device: str = "auto", source: str | None = None, timeout_s: float | None = None) -> DistEnv:
    """Detect the environment (or use ``source``), pick the device and initialise the
    process group when there are several ranks. Safe to call twice.

    ``timeout_s`` (``train.collective_timeout_s``, default 600) bounds how long a collective
    waits for the other ranks: when one rank dies (killed, out of memory, a lost node) the
    others fail after at most that long instead of hanging until the job's time limit."""
    source = source or detect()
    if source == "slurm":
        export_slurm()
    elif source not in ("torchrun", "single"):
        raise ValueError(f"source must be torchrun, slurm or single, got {source!r}")
    if source == "single":
        rank, world, local_rank = 0, 1, 0
    else:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None,
                                timeout=datetime.timedelta(seconds=float(timeout_s or DEFAULT_TIMEOUT_S)))
    return DistEnv(rank, world, local_rank, device, source)


def setup_from_slurm(requested_device: str = "auto", timeout_s: float | None = None) -> DistEnv:
    """For code running inside a submitit/Slurm job: like :func:`setup`, but the Slurm
    variables win over anything else (one task: a single process)."""
    many = int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return setup(requested_device, source="slurm" if many else "single", timeout_s=timeout_s)


def teardown() -> None:
    """Destroy the process group (end of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
