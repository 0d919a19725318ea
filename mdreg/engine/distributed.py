"""The training process: its place in a (possibly) distributed run, the collectives the
trainer needs across ranks, and the process-wide numeric switches.

Place and device, read from the environment.

:func:`setup` detects where it runs, in this order:

1. **torchrun** (or any launcher that sets ``RANK`` and ``WORLD_SIZE``, plus
   ``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``);
2. **a task of a Slurm job step** (``SLURM_PROCID`` set and ``SLURM_STEP_NUM_TASKS`` > 1:
   ``srun`` sets the latter, e.g. in a submitit job with ``tasks_per_node`` > 1; the batch
   shell of an ``--ntasks`` job has ``SLURM_NTASKS`` but no step, and must not wait for
   ranks that never come): submitit's ``TorchDistributedEnvironment`` turns the
   Slurm variables into torch's (``MASTER_ADDR`` = first host of the job, ``MASTER_PORT``
   derived from the job id unless set); inside a submitted job, :func:`job_source`;
3. otherwise a single process: rank 0 of 1. A lone Slurm task (or a shell inside an
   allocation, whose leaked ``SLURM_*`` variables must not matter) is this case.

The device is ``cuda:LOCAL_RANK`` when CUDA is available and the process sees several
GPUs, ``cuda:0`` when it sees one (Slurm bound one GPU per task), else the CPU. Several
ranks initialise the default process group (NCCL on GPUs, gloo on the CPU).

A rank that dies. ``train.collective_timeout_s`` (default 600 s) is the process group's
timeout: how long a collective waits for the other ranks. What the survivors see
(measured with gloo, torch 2.x):

* the peer process is gone (SIGKILL, out of memory, a crash): its sockets close, and the
  survivors' next (or current) collective fails at once with ``RuntimeError: ... Connection
  closed by peer`` (or "reset by peer", "Broken pipe");
* the peer lives but does not answer (hung, stopped, a lost node whose sockets stay half
  open): the collective fails after the timeout, ``Timed out waiting 600000ms for recv
  operation``. With NCCL, the watchdog aborts the process after the timeout instead.

:func:`explain_collective_failure` turns either into :class:`CollectiveFailure`, whose
message names this rank, the lost rank(s) when they can be told (the ranks' pids and hosts
are exchanged at setup; a rank on this host whose process is gone is named) and the
timeout, and says that relaunching resumes from the last checkpoint. Why 600 s: a collective
must wait out the longest work one rank does while the others wait (rank 0 writes a
checkpoint of a large model to a slow file system, samples a grid or evaluates; the first
step of ``torch.compile`` on a slow rank), yet a dead rank should end a job in minutes, not
at its time limit. A recipe with a long rank-0-only evaluation raises it.

Collectives (all no-ops in a single process): :func:`mean_over_ranks` (the logged loss, at
log steps only), :func:`max_over_ranks` (ranks agree on the first NaN/inf step),
:func:`gather_objects` (RNG states for a checkpoint, hosts for provenance), :func:`barrier`,
and :class:`StopVote`: a stop request seen by any rank (submitit signals only global rank 0)
stops every rank at the same step boundary; the vote runs on a CPU (gloo) group so it never
waits for the GPU stream.

Process-wide switches, set once per process by :func:`setup` from the run's ``train`` section:
``train.tf32`` allows TensorFloat-32 matmuls/convolutions on Ampere+ GPUs (the default, as in
MaskDiT; no effect on the CPU); ``train.sdpa_backends`` restricts which attention kernels
``scaled_dot_product_attention`` may use (null: PyTorch's choice; a list enables exactly
those, in PyTorch's own order of preference). On an H100 with torch 2.11 PyTorch picks cuDNN
for bf16, which we measured slower than FlashAttention-2 for MaskDiT's short sequences and
head dim 72 (docs/performance.md).
"""
from __future__ import annotations

import contextlib
import datetime
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

from mdreg.errors import ConfigError, UserError
from mdreg.provenance import process_start

DEFAULT_TIMEOUT_S = 600  # train.collective_timeout_s
_PEERS: list[tuple[str, int, int | None]] = []  # (host, pid, start ticks) of each rank, filled by setup()
_TIMEOUT_S: float = DEFAULT_TIMEOUT_S
LOST_WAIT_S = 2.0  # after a closed connection, how long to look for the peer's process ending
# how gloo, NCCL and c10d word a lost peer (closed socket) and a timeout
_LOST = re.compile(r"Connection closed by peer|Connection reset by peer|Broken pipe|pair closure|"
                   r"NCCL communicator was aborted|remote process exited|ECONNRESET|EPIPE", re.I)
_TIMED_OUT = re.compile(r"Timed out waiting|collective operation timeout|Socket Timeout", re.I)


class CollectiveFailure(RuntimeError):
    """A collective failed because another rank died or did not answer in time."""


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
        global _TIMEOUT_S
        _TIMEOUT_S = float(timeout_s or DEFAULT_TIMEOUT_S)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None,
                                timeout=datetime.timedelta(seconds=_TIMEOUT_S))
        _PEERS[:] = _gather_peers(world)
    return DistEnv(rank, world, local_rank, device, source)


def _gather_peers(world: int) -> list[tuple[str, int, int | None]]:
    """Every rank's (host, pid, process start time): to name a lost rank later."""
    out: list = [None] * world
    dist.all_gather_object(out, (socket.gethostname(), os.getpid(), process_start(os.getpid())))
    return out


def _gone(host: str, pid: int, ticks: int | None) -> bool | None:
    """Whether a rank's process has ended (None: on another host, cannot be told from here)."""
    if host != socket.gethostname():
        return None
    now = process_start(pid)
    return now is None or (ticks is not None and now != ticks)


@contextlib.contextmanager
def collective_failures_explained(env: "DistEnv") -> Iterator[None]:
    """Re-raise a lost or silent peer's backend error as :class:`CollectiveFailure`."""
    try:
        yield
    except CollectiveFailure:
        raise
    except RuntimeError as exc:
        failure = explain_collective_failure(exc, env.rank, env.world_size)
        if failure is None:
            raise
        raise failure from exc


def _wait_for_gone(others: list[tuple], wait_s: float) -> list[str]:
    """The ranks on this host whose process has ended. A killed peer's sockets close a moment
    before its process is marked ended, so a closed connection waits up to ``wait_s`` for it."""
    end = time.monotonic() + wait_s
    while True:
        gone = [f"rank {r} (pid {pid} on {host})" for r, host, pid, ticks in others if _gone(host, pid, ticks)]
        if gone or time.monotonic() >= end or all(_gone(host, pid, ticks) is None for _, host, pid, ticks in others):
            return gone
        time.sleep(0.05)


def explain_collective_failure(exc: BaseException, rank: int, world_size: int) -> CollectiveFailure | None:
    """A :class:`CollectiveFailure` describing ``exc`` if it is a lost or silent peer (see the
    module docstring), else None (another error: let it propagate as it is)."""
    text = str(exc)
    lost, timed_out = bool(_LOST.search(text)), bool(_TIMED_OUT.search(text))
    if world_size < 2 or not (lost or timed_out):
        return None
    others = [(r, *peer) for r, peer in enumerate(_PEERS) if r != rank]
    gone = _wait_for_gone(others, LOST_WAIT_S if lost else 0.0)
    alive = [f"rank {r} (pid {pid})" for r, host, pid, ticks in others if _gone(host, pid, ticks) is False]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = re.sub(r"^\[[^\]]*\] ", "", first)  # gloo prefixes its source file, and then adds advice:
    first = first.split(". This is typically")[0][:300]
    if gone:
        what = f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} gone (killed, out of memory or crashed: " \
               f"see {'its' if len(gone) == 1 else 'their'} own log)"
    elif lost:
        only = f"rank {others[0][0]} " if len(others) == 1 else "another rank "
        what = f"{only}closed its connection (it died or its node was lost; see its log)"
    else:
        idle = f"; {', '.join(alive)} still running but silent: hung, stopped or far slower" if alive else ""
        what = (f"no answer from the other ranks within train.collective_timeout_s={_TIMEOUT_S:g} s{idle}. If a "
                f"rank legitimately works alone longer than that (a long evaluation or checkpoint on rank 0), "
                f"raise train.collective_timeout_s")
    return CollectiveFailure(f"rank {rank} of {world_size} stopped: a collective failed because {what}. "
                             f"[{type(exc).__name__}: {first}] Every rank stops; the last checkpoint is intact: "
                             f"relaunch the same command to resume from it")


def job_source() -> str:
    """The :func:`setup` source inside a Slurm job: the Slurm variables win over anything else
    (several tasks: ``slurm``; one task: a single process)."""
    return "slurm" if int(os.environ.get("SLURM_NTASKS", "1")) > 1 else "single"


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    if not active():
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def max_over_ranks(value: torch.Tensor) -> torch.Tensor:
    if not active():
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` alone)."""
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        dist.barrier()


class StopVote:
    """Per-step agreement on "stop now": True on every rank if any rank asked."""

    def __init__(self):
        self.group = None
        if active():
            self.group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")

    def agree(self, local: bool) -> bool:
        if not active():
            return bool(local)
        flag = torch.tensor([1 if local else 0], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
        return bool(flag.item())


BACKENDS = {"flash": "enable_flash_sdp", "efficient": "enable_mem_efficient_sdp", "cudnn": "enable_cudnn_sdp",
            "math": "enable_math_sdp"}


def configure_process(train, device: torch.device) -> None:
    """Apply the run's ``train.tf32`` and ``train.sdpa_backends`` to this process."""
    configure_tf32(bool(train.get("tf32", True)), device)
    configure_sdpa(train.get("sdpa_backends"))


def configure_tf32(enabled: bool, device: torch.device) -> None:
    """Allow (or forbid) TF32 in CUDA matmuls and cuDNN convolutions."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def configure_sdpa(backends: list[str] | None) -> None:
    if backends is None:
        return
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"train.sdpa_backends={list(backends)!r}: choose from {', '.join(BACKENDS)} (or null)")
    for name, switch in BACKENDS.items():
        getattr(torch.backends.cuda, switch)(name in backends)
