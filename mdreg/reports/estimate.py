"""What a recipe will cost before it runs: ``python tools/launch.py RECIPE --estimate``.

For every run (sweep element) and stage: the forward GMACs of one sample at the stage's
mask ratio (fvcore, via ``forward_gmacs`` of :mod:`mdreg.models.flops`), the training
FLOPs per optimizer step, ``3 x 2 x GMACs x global batch`` (fvcore counts a multiply-add
as one; the backward pass costs about twice the forward), the stage's total PFLOPs, and
GPU-hours on a given device:

* ``--peak-tflops P --mfu U``: ``total FLOPs / (P * U)`` (default: 791 TFLOP/s at 45% MFU);
* ``--images-per-s N``: ``steps x batch / N``, N being one GPU's measured training throughput.

Mask ratios: a constant masker ratio counts its visible tokens exactly, with the masker's own
rounding rule (``masker.num_masked``: MaskDiT keeps int(N(1 - r)), maskdm masks whole blocks),
as the trainer draws them. A ratio schedule (MaskDiT's cosine
unmasking tuning) is averaged over the stage's steps: a transformer's forward MACs are a
quadratic polynomial of the number of visible tokens K (projections and MLPs ~K, attention
~K^2, the MaskDiT decoder constant), so three traced token counts give the exact average.
Models are built on the ``meta`` device (nothing allocated until traced); counts are cached
per model config and token count, so a sweep of one backbone traces it at most three times.
Not counted: sampling grids, EMA updates, data loading, the VAE (latents are pre-encoded).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from mdreg.engine.parts import meta_model
from mdreg.engine.stage import TrainStage
from mdreg.errors import UserError
from mdreg.models.flops import forward_gmacs
from mdreg.runs.plan import RunPlan

SCHEDULE_SAMPLES = 20_000  # steps at which a mask-ratio schedule is evaluated (evenly spaced)


@dataclass
class Device:
    """How fast training runs: from peak TFLOP/s x MFU, or from measured images/s per GPU."""

    peak_tflops: float = 791.0
    mfu: float = 0.45
    images_per_s: float | None = None

    def __post_init__(self):
        if self.images_per_s is not None and self.images_per_s <= 0:
            raise UserError(f"--images-per-s must be positive, got {self.images_per_s}")
        if self.peak_tflops <= 0 or not 0 < self.mfu <= 1:
            raise UserError(f"--peak-tflops must be positive and --mfu in (0, 1], got {self.peak_tflops}, {self.mfu}")

    def gpu_hours(self, flops: float, images: float) -> float:
        if self.images_per_s is not None:
            return images / self.images_per_s / 3600
        return flops / (self.peak_tflops * 1e12 * self.mfu) / 3600

    def describe(self) -> str:
        if self.images_per_s is not None:
            return f"GPU-hours at {self.images_per_s:g} training images/s per GPU"
        return f"GPU-hours at {self.peak_tflops:g} TFLOP/s peak x {self.mfu:g} MFU"


@dataclass
class StageCost:
    run: str
    stage: str
    steps: int
    batch: int
    precision: str
    mean_ratio: float
    gmacs: float  # forward, one sample, averaged over the stage's mask ratios

    @property
    def step_tflops(self) -> float:
        return 3 * 2 * self.gmacs * 1e9 * self.batch / 1e12

    @property
    def total_pflops(self) -> float:
        return self.step_tflops * self.steps / 1e3


class MacCounter:
    """Forward GMACs per sample of a model config at K visible tokens, cached."""

    def __init__(self):
        self._gmacs: dict[tuple[str, int], float] = {}

    def model(self, cfg: DictConfig) -> torch.nn.Module:
        return meta_model(cfg)

    def tokens(self, cfg: DictConfig) -> int:
        grid = self.model(cfg).grid_size
        return int(grid[0] * grid[1])

    def at(self, cfg: DictConfig, keep: int) -> float:
        key = (OmegaConf.to_yaml(cfg, resolve=True), keep)
        if key not in self._gmacs:
            n = self.tokens(cfg)
            model = self.model(cfg)
            self._gmacs[key] = float(forward_gmacs(model, batch=1, mask_ratio=(n - keep) / n))
        return self._gmacs[key]

    def mean(self, cfg: DictConfig, keeps: Counter) -> float:
        """Average GMACs over a histogram {visible tokens: steps} (exact: quadratic in K)."""
        total = sum(keeps.values())
        if len(keeps) <= 3:
            return sum(self.at(cfg, k) * w for k, w in keeps.items()) / total
        lo, hi = min(keeps), max(keeps)
        points = sorted({lo, (lo + hi) // 2, hi})
        a, b, c = _quadratic(points, [self.at(cfg, k) for k in points])
        return sum((a + b * k + c * k * k) * w for k, w in keeps.items()) / total


def _quadratic(xs: list[int], ys: list[float]) -> tuple[float, float, float]:
    """Coefficients (a, b, c) of a + b x + c x^2 through three points (Lagrange)."""
    (x0, x1, x2), (y0, y1, y2) = xs, ys
    d0, d1, d2 = (x0 - x1) * (x0 - x2), (x1 - x0) * (x1 - x2), (x2 - x0) * (x2 - x1)
    c = y0 / d0 + y1 / d1 + y2 / d2
    b = -(y0 * (x1 + x2) / d0 + y1 * (x0 + x2) / d1 + y2 * (x0 + x1) / d2)
    a = y0 * x1 * x2 / d0 + y1 * x0 * x2 / d1 + y2 * x0 * x1 / d2
    return a, b, c


def visible_tokens(stage: TrainStage, n: int) -> Counter:
    """{visible tokens: number of steps} of the planned ``stage`` (its masker's own rounding, its
    mask-ratio schedule over the declared length even when ``train.max_steps`` caps the stage)."""
    masker, steps = stage.masker, stage.steps
    if masker is None or masker.ratio == 0 and stage.mask_schedule is None:
        return Counter({n: steps})
    if stage.mask_schedule is None:
        return Counter({n - masker.num_masked(masker.ratio, n): steps})
    m = min(steps, SCHEDULE_SAMPLES)
    picks = [round(i * (steps - 1) / (m - 1)) for i in range(m)] if m > 1 else [0]
    counts = Counter(n - masker.num_masked(stage.mask_ratio(i), n) for i in picks)
    scale = steps / len(picks)
    return Counter({k: v * scale for k, v in counts.items()})


def estimate_plans(plans: list[RunPlan], counter: MacCounter | None = None) -> list[StageCost]:
    counter = counter or MacCounter()
    costs = []
    for plan in plans:
        n = counter.tokens(plan.cfg.model)
        for stage in plan.stages:
            keeps = visible_tokens(stage, n)
            mean_keep = sum(k * w for k, w in keeps.items()) / sum(keeps.values())
            costs.append(StageCost(plan.run_name, stage.name, stage.steps, stage.batch_size,
                                   stage.precision, 1 - mean_keep / n,
                                   counter.mean(plan.cfg.model, keeps)))
    return costs


def _num(x: float) -> str:
    """Thousands separators for big numbers, three significant digits for small ones (the toys)."""
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3g}"


def cost_table(costs: list[StageCost], device: Device) -> str:
    """One row per run and stage, a total per run (sweeps), and the grand total."""
    rows, runs = [], {}
    for c in costs:
        hours = device.gpu_hours(c.total_pflops * 1e15, c.steps * c.batch)
        runs.setdefault(c.run, [0.0, 0.0])
        runs[c.run][0] += c.total_pflops
        runs[c.run][1] += hours
        rows.append([c.run, c.stage, f"{c.steps:,}", c.batch, c.precision, f"{c.mean_ratio:.3f}", _num(c.gmacs),
                     _num(c.step_tflops), _num(c.total_pflops), _num(hours)])
    if len(runs) > 1:
        for run, (pflops, hours) in runs.items():
            rows.append([run, "(run total)", "", "", "", "", "", "", _num(pflops), _num(hours)])
    total_pf, total_h = sum(v[0] for v in runs.values()), sum(v[1] for v in runs.values())
    rows.append(["TOTAL", f"{len(runs)} run(s)", "", "", "", "", "", "", _num(total_pf), _num(total_h)])
    headers = ["run", "stage", "steps", "global batch", "precision", "mask ratio (mean)", "fwd GMACs/sample",
               "train TFLOPs/step", "total PFLOPs", "GPU-hours"]
    notes = [f"# {device.describe()}; train FLOPs = 3 (fwd+bwd) x 2 x fwd MACs x global batch.",
             "# fp32/tf32 stages reach about half the bf16 peak on A100/H100: their GPU-hours are optimistic."]
    return "\n".join(notes) + "\n" + tabulate(rows, headers=headers, disable_numparse=True)
