"""What a recipe asks of the engine: each stage's settings and the run-wide ``train`` section,
and the rules they obey (each checked here and nowhere else).

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

The planner (:mod:`mdreg.runs.plan`) and :func:`mdreg.engine.parts.build_stage` both use the
functions below, so a rule has one wording and one place.

The run-wide ``train`` section is a typed schema, :class:`TrainSettings`.

Recipes start from ``recipes/common/train.py``. The section is checked after overrides by
:func:`mdreg.config.schema.load_section` (types: ``train.seed=abc`` fails naming the key)
and then by :meth:`TrainSettings.__post_init__` (ranges), so a bad value is one clear error
at ``--dry-run``, not a crash deep inside the trainer. Extra keys (added with
``+train.key=...``) are allowed and ignored here.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from omegaconf import DictConfig

from mdreg.config.schema import hint as _hint
from mdreg.config.schema import load_section, require
from mdreg.config.tree import to_plain
from mdreg.engine.optim import check_ema_settings as check_ema
from mdreg.engine.optim import check_precision
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


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")


@dataclass
class TrainSettings:
    """Run-wide settings; each field's ``hint`` says what it accepts."""

    seed: int = field(default=0, metadata=_hint("a non-negative integer"))
    output_root: str = field(default="runs", metadata=_hint("a directory path"))
    run_name: Optional[str] = field(default=None, metadata=_hint("a folder name without '/'"))
    max_steps: Optional[int] = field(default=None, metadata=_hint("a positive integer or null"))
    device: str = field(default="auto", metadata=_hint("auto, cpu, cuda or cuda:N"))
    tf32: bool = field(default=True, metadata=_hint("true or false"))
    compile: Any = field(default=None, metadata=_hint(
        "true/false or a torch.compile backend name (inductor, aot_eager, eager)"))
    compile_mode: Optional[str] = field(default=None, metadata=_hint(
        f"null or a torch.compile mode ({', '.join(COMPILE_MODES)})"))
    find_unused_parameters: bool = field(default=False, metadata=_hint(
        "true or false (DDP: parameters some steps do not use)"))
    log_every: int = field(default=10, metadata=_hint("a positive integer"))
    ckpt_every: Optional[int] = field(default=1000, metadata=_hint(
        "a non-negative integer (0: only at the end of a stage)"))
    keep_last: int = field(default=2, metadata=_hint("a positive integer"))
    milestone_every: Optional[int] = field(default=None, metadata=_hint("a positive integer or null"))
    num_workers: int = field(default=0, metadata=_hint("a non-negative integer"))
    sdpa_backends: Optional[List[str]] = field(default=None, metadata=_hint(
        f"null or a list of {', '.join(SDPA_BACKENDS)}"))
    collective_timeout_s: int = field(default=600, metadata=_hint(
        "a positive number of seconds (how long a rank waits for the others before the run fails)"))

    def __post_init__(self) -> None:
        require(self, {
            "seed": self.seed >= 0,
            "output_root": bool(self.output_root),
            "run_name": self.run_name is None or ("/" not in self.run_name and self.run_name not in (".", "..")),
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "device": self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            "compile": self.compile is None or isinstance(self.compile, (bool, str)),
            "compile_mode": self.compile_mode is None or self.compile_mode in COMPILE_MODES,
            "log_every": self.log_every >= 1,
            "ckpt_every": self.ckpt_every is None or self.ckpt_every >= 0,
            "keep_last": self.keep_last >= 1,
            "milestone_every": self.milestone_every is None or self.milestone_every >= 1,
            "num_workers": self.num_workers >= 0,
            "sdpa_backends": self.sdpa_backends is None or (
                len(self.sdpa_backends) > 0 and set(self.sdpa_backends) <= set(SDPA_BACKENDS)),
            "collective_timeout_s": self.collective_timeout_s >= 1,
        })

    @classmethod
    def from_config(cls, train: DictConfig) -> "TrainSettings":
        """Check ``train`` (types, then ranges) and return it typed; one ConfigError names every bad key."""
        known = {f.name for f in fields(cls)}
        given = {k: to_plain(train[k]) for k in train.keys() if k in known}
        return load_section(cls, given, lambda key, value: f"train.{key}={value!r}")
