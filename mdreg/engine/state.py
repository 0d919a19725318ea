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


def rank_rng_state(generator: torch.Generator, device: torch.device) -> dict:
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(), "device": device.type,
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def data_position(step: int, global_batch: int, dataset_size: int, seed: int) -> dict:
    per_epoch = max(1, dataset_size // global_batch)
    epoch, within = divmod(step, per_epoch)
    return {"seed": seed, "global_batch": global_batch, "dataset_size": dataset_size, "epoch": epoch,
            "batch_in_epoch": within, "samples_seen": step * global_batch}


def collect(trainer) -> dict:
    """The checkpoint of ``trainer`` (a collective: every rank must call it)."""
    ranks = gather_objects(rank_rng_state(trainer.generator, trainer.device))
    return {"model": trainer.model.state_dict(), "ema": trainer.ema.state_dict(),
            "optimizer": trainer.optimizer.state_dict(), "scaler": trainer.scaler.state_dict(),
            "step": trainer.step, "total_steps": trainer.total, "stage": trainer.name,
            "rng": {"world_size": len(ranks), "ranks": ranks},
            "data": data_position(trainer.step, trainer.stage.batch_size, len(trainer.dataset), trainer.seed)}


def restore(trainer, state: dict) -> list[str]:
    """Load ``state`` into ``trainer``; returns notes worth logging."""
    trainer.model.load_state_dict(state["model"])
    trainer.ema.load_state_dict(state["ema"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.step = int(state["step"])
    ranks = state["rng"]["ranks"]
    if len(ranks) != trainer.env.world_size:
        return [f"the checkpoint was written by {len(ranks)} rank(s), this run has {trainer.env.world_size}: "
                f"global RNG states are not restored (the trainer's per-micro-batch streams are unaffected)"]
    mine = ranks[trainer.env.rank]
    torch.set_rng_state(mine["torch"].cpu())
    saved_on = mine.get("device") or ("cuda" if mine.get("cuda") is not None else "cpu")
    if saved_on != trainer.device.type:  # a CPU generator's state does not fit a CUDA one, and back
        return [f"the checkpoint was written on {saved_on}, this run is on {trainer.device.type}: the trainer's "
                f"{trainer.device.type} generator state is not restored (its per-micro-batch streams are unaffected)"]
    trainer.generator.set_state(mine["generator"].cpu())
    if mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"].cpu(), trainer.device)
    return []
