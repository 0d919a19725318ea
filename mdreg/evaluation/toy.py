"""Measure the Figure-1 toy runs: points sampled from a stage's final weights
(:func:`stage_samples`: all coordinates visible, MaskDM sec. 3.3, "we sample ... by setting M as
1") and their distances to held-out points (:func:`measure`: sliced Wasserstein-2 and MMD^2,
:mod:`mdreg.evaluation.formulas`). ``metric: toy`` of tools/evaluate.py and tools/toy_report.py
(:mod:`mdreg.reports.toy`) use them.
"""
from __future__ import annotations

import torch

from mdreg.config import instantiate
from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint
from mdreg.engine.distributed import DistEnv
from mdreg.engine.parts import build_parts
from mdreg.engine.sampling import generate
from mdreg.evaluation.formulas import mmd, sliced_wasserstein
from mdreg.runs.plan import RunPlan


def stage_samples(plan: RunPlan, stage: str, num: int, seed: int) -> torch.Tensor | None:
    """(num, D) points from the final EMA weights of ``stage`` (None if it has no checkpoint)."""
    latest = CheckpointManager(plan.run_dir / stage / "checkpoints").latest()
    if latest is None:
        return None
    cfg = plan.cfg
    parts = build_parts(cfg, plan.stage(stage), DistEnv(), data=False)
    state = load_checkpoint(latest, map_location="cpu")
    parts.model.load_state_dict(state[cfg.evaluation.get("weights", "ema")])
    sampler = instantiate(cfg.evaluation.sampler, key="evaluation.sampler")
    points = generate(parts.model, parts.stage.objective, sampler, parts.transform, num, parts.sample_shape, seed=seed,
                      batch_size=num)
    return points.reshape(num, -1)


def measure(samples: torch.Tensor, reference: torch.Tensor, projections: int, seed: int) -> dict:
    return {"swd": sliced_wasserstein(samples, reference, projections=projections, seed=seed),
            "mmd": mmd(samples, reference)}
