"""What a checkpoint holds, and putting it back.

Contents (all loadable with ``torch.load(weights_only=True)``):

* ``model``, ``ema`` — state dicts of the plain module (no DDP/compile prefixes);
* ``optimizer``, ``scaler`` — AdamW moments, fp16 loss-scale state;
* ``step`` (optimizer steps done), ``total_steps``, ``stage``;
* ``rng`` — ``{"world_size": W, "ranks": [per-rank states]}``: each rank's trainer
  generator, torch CPU RNG and (on GPUs) CUDA RNG state with the device type, gathered to
  rank 0. On resume each rank restores its own entry (a changed world size keeps fresh
  global RNGs, a changed device type a fresh trainer generator, and says so; the trainer's
  streams are re-keyed per micro-batch anyway, see :mod:`mdreg.engine.randomness`);
* ``data`` — the data-order position (epoch, batch within the epoch, samples seen). It is
  derived from ``step`` (:mod:`mdreg.engine.data_order`) and recorded for inspection.
"""
from __future__ import annotations

import torch

from mdreg.engine.ddp import gather_objects
from mdreg.engine.distributed import DistEnv
from mdreg.engine.parts import StageParts


def rank_rng_state(generator: torch.Generator, device: torch.device) -> dict:
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(), "device": device.type,
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def data_position(step: int, global_batch: int, dataset_size: int, seed: int) -> dict:
    per_epoch = max(1, dataset_size // global_batch)
    epoch, within = divmod(step, per_epoch)
    return {"seed": seed, "global_batch": global_batch, "dataset_size": dataset_size, "epoch": epoch,
            "batch_in_epoch": within, "samples_seen": step * global_batch}


def collect(parts: StageParts, step: int) -> dict:
    """The checkpoint of ``parts`` after ``step`` optimizer steps (a collective: every rank calls it)."""
    ranks = gather_objects(rank_rng_state(parts.generator, parts.device))
    return {"model": parts.model.state_dict(), "ema": parts.ema.state_dict(),
            "optimizer": parts.optimizer.state_dict(), "scaler": parts.precision.scaler.state_dict(),
            "step": step, "total_steps": parts.steps, "stage": parts.name,
            "rng": {"world_size": len(ranks), "ranks": ranks},
            "data": data_position(step, parts.batch_size, len(parts.dataset), parts.seed)}


def restore(parts: StageParts, state: dict, env: DistEnv) -> tuple[int, list[str]]:
    """Load ``state`` into ``parts`` for the process ``env``; returns (step, notes worth logging)."""
    parts.model.load_state_dict(state["model"])
    parts.ema.load_state_dict(state["ema"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.precision.scaler.load_state_dict(state["scaler"])
    step = int(state["step"])
    ranks = state["rng"]["ranks"]
    if len(ranks) != env.world_size:
        return step, [f"the checkpoint was written by {len(ranks)} rank(s), this run has {env.world_size}: "
                      f"global RNG states are not restored (the trainer's per-micro-batch streams are unaffected)"]
    mine = ranks[env.rank]
    torch.set_rng_state(mine["torch"].cpu())
    saved_on = mine.get("device") or ("cuda" if mine.get("cuda") is not None else "cpu")
    if saved_on != parts.device.type:  # a CPU generator's state does not fit a CUDA one, and back
        return step, [f"the checkpoint was written on {saved_on}, this run is on {parts.device.type}: the "
                      f"trainer's {parts.device.type} generator state is not restored (its per-micro-batch "
                      f"streams are unaffected)"]
    parts.generator.set_state(mine["generator"].cpu())
    if mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"].cpu(), parts.device)
    return step, []
