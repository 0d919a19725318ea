"""Collectives the trainer needs across ranks, all no-ops in a single process.

* :func:`mean_over_ranks` — the logged loss is the mean over ranks (called at log steps
  only, so there is no per-step synchronisation for logging);
* :func:`max_over_ranks` — ranks agree on the first bad (NaN/inf) step;
* :func:`gather_objects` — rank 0 collects every rank's RNG states for the checkpoint;
* :class:`StopVote` — a stop request seen by any rank (submitit signals only global rank 0)
  stops every rank at the same step boundary. The vote runs on a CPU (gloo) group so it
  never waits for the GPU stream.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


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
