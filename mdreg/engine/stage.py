"""A training stage: what to optimise, on what, for how long, starting from which weights.

Recipes list stages in order (``stages = dict(pretrain=L("stage:train")(...), finetune=...)``)
and they run in that order (locally) or as a dependency chain (Slurm). A stage names its
objective, masker (+ ratio schedule), optimiser, lr schedule, steps, global batch, EMA,
precision and where its initial weights come from:

* ``init_from=None``: fresh initialisation (seeded);
* ``init_from="previous"`` (or a stage name): that stage's final EMA weights — MaskDM's
  denoising fine-tuning and MaskDiT's unmasking tuning start from the masked stage;
* ``init_from=dict(stage=NAME, weights="ema"|"model")``: choose EMA or raw weights;
* ``init_from=dict(path=FILE, weights=...)`` or ``dict(path=FILE, kind="dit"|"maskdit"|"uvit"|"maskdm")``:
  an mdreg checkpoint file or an official release's file (see :mod:`mdreg.engine.handoff`).

``batch_size`` is the GLOBAL batch: each of ``W`` processes runs ``grad_accum``
micro-batches of ``batch_size / (W * grad_accum)`` samples per optimizer step.
``mask_schedule`` (a ``mask_schedule:*`` component) varies the mask ratio over the stage's
steps, e.g. MaskDiT's unmasking tuning; without it the masker's ratio is used throughout.
"""
from __future__ import annotations

from typing import Any

from mdreg.registry import STAGES

PRECISIONS = ("fp32", "bf16", "fp16")
EMA_DEFAULTS = {"decay": 0.9999, "every": 1, "start": 0}


def check_settings(steps: int, batch_size: int, grad_accum: int = 1, precision: str = "fp32",
                   grad_clip: float | None = None, label_dropout: float = 0.0, ema: dict | None = None) -> dict:
    """Check a stage's scalar settings (the launcher runs this before anything is submitted,
    the stage when it is built); returns the complete EMA settings. Raises ValueError."""
    if steps < 1 or batch_size < 1 or grad_accum < 1:
        raise ValueError(f"steps, batch_size and grad_accum must be >= 1 (got {steps}, {batch_size}, {grad_accum})")
    if batch_size % grad_accum:
        raise ValueError(f"batch_size {batch_size} is not divisible by grad_accum {grad_accum}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip must be positive or null, got {grad_clip}")
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
    unknown = sorted(set(ema or {}) - set(EMA_DEFAULTS))
    if unknown:
        raise ValueError(f"ema has unknown keys {unknown} (allowed: {', '.join(EMA_DEFAULTS)})")
    settings = {**EMA_DEFAULTS, **(ema or {})}
    if not 0.0 <= settings["decay"] < 1.0 or settings["every"] < 1 or settings["start"] < 0:
        raise ValueError(f"ema needs 0 <= decay < 1, every >= 1, start >= 0; got decay {settings['decay']}, "
                         f"every {settings['every']}, start {settings['start']}")
    return settings


@STAGES.register("train")
class TrainStage:
    """One training stage (masked pre-training, denoising fine-tuning, unmasking tuning, ...)."""

    def __init__(self, steps: int, batch_size: int, objective: Any, masker: Any = None, mask_schedule: Any = None,
                 optimizer: Any = None, lr_schedule: Any = None, grad_clip: float | None = None, grad_accum: int = 1,
                 ema: dict | None = None, precision: str = "fp32", init_from: Any = None, label_dropout: float = 0.0,
                 hflip: float | None = None, dataset: Any = None, sample: dict | None = None):
        self.ema = check_settings(steps, batch_size, grad_accum, precision, grad_clip, label_dropout, ema)
        self.steps, self.batch_size, self.grad_accum = steps, batch_size, grad_accum
        self.objective, self.masker, self.mask_schedule = objective, masker, mask_schedule
        self.optimizer, self.lr_schedule, self.grad_clip = optimizer, lr_schedule, grad_clip
        self.precision, self.label_dropout, self.hflip, self.dataset = precision, label_dropout, hflip, dataset
        self.init_from = normalise_init(init_from)
        self.sample = {"every": None, "num": 16, "sampler": None, "guidance_scale": 1.0, **(sample or {})}

    def mask_ratio(self, step: int) -> float:
        """The mask ratio at 0-based ``step`` (0 without a masker)."""
        if self.masker is None:
            return 0.0
        if self.mask_schedule is None:
            return self.masker.ratio
        return float(self.mask_schedule(step, self.steps, self.masker.ratio))


def normalise_init(init_from: Any) -> dict | None:
    """``None`` | ``"previous"`` | ``"NAME"`` | ``{stage|path, weights}`` -> a dict or None."""
    if init_from is None:
        return None
    if isinstance(init_from, str):
        return {"stage": init_from, "weights": "ema"}
    if isinstance(init_from, dict):
        if ("stage" in init_from) == ("path" in init_from):
            raise ValueError("init_from needs exactly one of 'stage' or 'path'")
        weights = init_from.get("weights", "ema")
        if weights not in ("ema", "model"):
            raise ValueError(f"init_from.weights must be 'ema' or 'model', got {weights!r}")
        unknown = sorted(set(init_from) - {"stage", "path", "weights", "kind"})
        if unknown:
            raise ValueError(f"init_from has unknown keys {unknown} (allowed: stage, path, weights, kind)")
        if init_from.get("kind") is not None and "path" not in init_from:
            raise ValueError("init_from.kind (an official checkpoint's family) needs init_from.path")
        return {**init_from, "weights": weights}
    raise ValueError(f"init_from must be null, a stage name, 'previous' or a dict, got {init_from!r}")
