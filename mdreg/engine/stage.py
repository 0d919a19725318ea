"""A training stage's settings, and the rules they obey (each checked here and nowhere else).

Recipes list stages in order (``stages = dict(pretrain=L("stage:train")(...), finetune=...)``)
and they run in that order (locally) or as a dependency chain (Slurm). A stage names its
objective, masker (+ ratio schedule), optimiser, lr schedule, steps, global batch, EMA,
precision and where its initial weights come from:

* ``init_from=None``: fresh initialisation (seeded);
* ``init_from="previous"`` (or an EARLIER stage's name): that stage's final EMA weights —
  MaskDM's denoising fine-tuning and MaskDiT's unmasking tuning start from the masked stage;
* ``init_from=dict(stage=NAME, weights="ema"|"model")``: choose EMA or raw weights;
* ``init_from=dict(path=FILE_OR_URI, weights=...)`` or ``dict(path=..., kind="dit"|"maskdit"|"uvit"|"maskdm")``:
  an mdreg checkpoint or an official release's file (see :mod:`mdreg.engine.handoff`).

``batch_size`` is the GLOBAL batch: each of ``W`` processes runs ``grad_accum``
micro-batches of ``batch_size / (W * grad_accum)`` samples per optimizer step
(:func:`micro_batch_size`). ``mask_schedule`` (a ``mask_schedule:*`` component) varies the
mask ratio over the stage's steps, e.g. MaskDiT's unmasking tuning; without it the masker's
ratio is used throughout. ``on_nonfinite``: ``stop`` (default) ends the run at a NaN/inf loss
or gradient; ``skip_step`` drops that optimizer step and counts it, and stops after
``max_skips_in_row`` consecutive skips.

The planner (:mod:`mdreg.launch.plan`) and :func:`mdreg.engine.parts.build_stage` both use the
functions below, so a rule has one wording and one place.
"""
from __future__ import annotations

import zlib
from typing import Any

from omegaconf import DictConfig

from mdreg.engine.ema import check_settings as check_ema
from mdreg.engine.precision import check_mode as check_precision
from mdreg.errors import ConfigError
from mdreg.registry import STAGES

ON_NONFINITE = ("stop", "skip_step")
OFFICIAL_KINDS = ("dit", "maskdit", "uvit", "maskdm")  # init_from.kind: official releases mdreg reads
EMA_DEFAULTS = {"decay": 0.9999, "every": 1, "start": 0}
SAMPLE_DEFAULTS = {"every": None, "num": 16, "sampler": None, "guidance_scale": 1.0}


@STAGES.register("train")
class TrainStage:
    """One training stage (masked pre-training, denoising fine-tuning, unmasking tuning, ...).

    ``dataset`` (a stage-specific dataset, e.g. MaskDM's transfer fine-tuning on another
    data set) is built by :func:`mdreg.engine.parts.build_stage`, not here."""

    def __init__(self, steps: int, batch_size: int, objective: Any, masker: Any = None, mask_schedule: Any = None,
                 optimizer: Any = None, lr_schedule: Any = None, grad_clip: float | None = None, grad_accum: int = 1,
                 ema: dict | None = None, precision: str = "fp32", init_from: Any = None, label_dropout: float = 0.0,
                 hflip: float | None = None, dataset: Any = None, sample: dict | None = None,
                 on_nonfinite: str = "stop", max_skips_in_row: int = 10, evaluate: Any = None):
        self.ema = check_settings(steps, batch_size, grad_accum, precision, grad_clip, label_dropout, ema,
                                  on_nonfinite, max_skips_in_row)
        self.steps, self.batch_size, self.grad_accum = steps, batch_size, grad_accum
        self.objective, self.masker, self.mask_schedule = objective, masker, mask_schedule
        self.optimizer, self.lr_schedule, self.grad_clip = optimizer, lr_schedule, grad_clip
        self.precision, self.label_dropout, self.hflip, self.dataset = precision, label_dropout, hflip, dataset
        self.on_nonfinite, self.max_skips_in_row = on_nonfinite, max_skips_in_row
        self.init_from = normalise_init(init_from)
        self.sample = {**SAMPLE_DEFAULTS, **(sample or {})}
        self.evaluate = evaluate  # a partial metric:* call, completed with the dataset by build_stage


def check_settings(steps: int, batch_size: int, grad_accum: int = 1, precision: str = "fp32",
                   grad_clip: float | None = None, label_dropout: float = 0.0, ema: dict | None = None,
                   on_nonfinite: str = "stop", max_skips_in_row: int = 10) -> dict:
    """Check a stage's scalar settings; returns the complete EMA settings. Raises ValueError
    (instantiate names the stage key)."""
    if steps < 1 or batch_size < 1 or grad_accum < 1:
        raise ValueError(f"steps, batch_size and grad_accum must be >= 1 (got {steps}, {batch_size}, {grad_accum})")
    if batch_size % grad_accum:
        raise ValueError(f"batch_size {batch_size} is not divisible by grad_accum {grad_accum}")
    check_precision(precision)
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip must be positive or null, got {grad_clip}")
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"on_nonfinite must be one of {', '.join(ON_NONFINITE)}, got {on_nonfinite!r}")
    if max_skips_in_row < 1:
        raise ValueError(f"max_skips_in_row must be >= 1, got {max_skips_in_row}")
    unknown = sorted(set(ema or {}) - set(EMA_DEFAULTS))
    if unknown:
        raise ValueError(f"ema has unknown keys {unknown} (allowed: {', '.join(EMA_DEFAULTS)})")
    settings = {**EMA_DEFAULTS, **(ema or {})}
    check_ema(**settings)
    return settings


def normalise_init(init_from: Any) -> dict | None:
    """``None`` | ``"previous"`` | ``"NAME"`` | ``{stage|path, weights, kind}`` -> a dict or None."""
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
        kind = init_from.get("kind")
        if kind is not None and "path" not in init_from:
            raise ValueError("init_from.kind (an official checkpoint's family) needs init_from.path")
        if kind is not None and kind not in OFFICIAL_KINDS:
            raise ValueError(f"init_from.kind={kind!r} is not an official checkpoint kind ({', '.join(OFFICIAL_KINDS)})")
        return {**init_from, "weights": weights}
    raise ValueError(f"init_from must be null, a stage name, 'previous' or a dict, got {init_from!r}")


def stage_seed(seed: int, stage_name: str) -> int:
    """The stage's seed: ``train.seed`` mixed with the stage name (stages draw independently)."""
    return (seed * 1_000_003 + zlib.crc32(stage_name.encode())) % (2 ** 31)


def effective_steps(cfg: DictConfig, stage_name: str) -> int:
    """The stage's steps, capped by ``train.max_steps`` when that is set."""
    steps = int(cfg.stages[stage_name].steps)
    cap = cfg.train.get("max_steps")
    return min(steps, int(cap)) if cap else steps


def micro_batch_size(batch_size: int, grad_accum: int, world: int, name: str, where: str = "") -> int:
    """Per-process micro-batch; the global batch must split evenly over ranks and accumulation.
    ``where`` says where the world size came from (e.g. "2 nodes x 4 GPUs")."""
    parts = world * grad_accum
    if batch_size % parts:
        raise ConfigError(f"stages.{name}.batch_size={batch_size} is the global batch and must be divisible by "
                          f"world size {world}{f' ({where})' if where else ''} x stages.{name}.grad_accum "
                          f"{grad_accum} = {parts}; change the batch size, grad_accum or the number of processes")
    return batch_size // parts


def stage_parent(cfg: DictConfig, name: str) -> str | None:
    """The stage whose weights ``stages.<name>`` starts from, checked against the declared
    order (None: fresh initialisation or a checkpoint file)."""
    names = list(cfg.stages.keys())
    init = cfg.stages[name].get("init_from")
    if isinstance(init, (DictConfig, dict)):
        if "path" in init:
            return None
        init = init.get("stage")
    if init is None:
        return None
    init, index = str(init), names.index(name)
    if init == "previous":
        if index == 0:
            raise ConfigError(f"stages.{name}.init_from='previous' but {name!r} is the first stage (stages: "
                              f"{', '.join(names)}); set stages.{name}.init_from=null to train it from scratch")
        return names[index - 1]
    if init not in names:
        raise ConfigError(f"stages.{name}.init_from names stage {init!r}, which this run does not have (stages: "
                          f"{', '.join(names)}); set stages.{name}.init_from=null to train it from scratch")
    if names.index(init) >= index:
        raise ConfigError(f"stages.{name}.init_from={init!r}: stages run in the order they are declared and "
                          f"{init!r} comes after {name!r}; declare {init!r} first")
    return init
