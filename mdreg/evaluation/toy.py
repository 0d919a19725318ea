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
from mdreg.registry import METRICS
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


@METRICS.register("toy")
class ToyDistances:
    """Sliced Wasserstein-2 and MMD^2 between points sampled from a toy stage's last checkpoint
    (the protocol's sampler, all coordinates visible) and held-out points (``evaluation.reference``,
    a dataset node of another seed): tools/toy_report.py's numbers, as one protocol metric."""

    names = ("swd", "mmd")
    defaults = ("swd", "mmd")
    better = {"swd": "lower", "mmd": "lower"}
    needs_samples = False  # it samples points itself, from the last checkpoint

    def __init__(self, cfg, stage: str, reference, projections: int = 512):
        self.cfg, self.stage, self.reference, self.projections = cfg, stage, reference, projections

    @classmethod
    def for_protocol(cls, cfg, protocol, inception_weights: str | None = None, device: str = "cpu"):
        return cls(cfg, protocol.stage, cfg.evaluation.reference, protocol.projections)

    def score_run(self, run_dir, n: int) -> tuple[dict, dict]:
        """(scores, details) of ``n`` points of the stage's last checkpoint in ``run_dir``."""
        from dataclasses import replace

        from mdreg.runs.rundir import plan_of_run

        seed = int(self.cfg.train.seed)
        plan = replace(plan_of_run(run_dir), cfg=self.cfg)  # the protocol's overrides applied
        samples = stage_samples(plan, self.stage, n, seed=seed + 1)
        reference = instantiate(self.reference, key="evaluation.reference").points
        return measure(samples, reference, self.projections, seed), {"num_samples": n, "sampling_seed": seed + 1}
