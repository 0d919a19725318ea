"""What a recipe asks of the engine: each stage's settings and the run-wide ``train`` section,
and the rules they obey (each checked here and nowhere else).

Recipes list stages in order (``stages = dict(pretrain=L("stage:train")(...), finetune=...)``)
and they run in that order (locally) or as a dependency chain (Slurm). A stage names its
objective, masker (+ ratio schedule), optimiser, lr schedule, steps, global batch, EMA,
precision and where its initial weights come from (``init_from``, resolved once by
:func:`resolve_init` into an :class:`InitFrom`):

* ``None``: fresh initialisation (seeded);
* ``"previous"`` or an EARLIER stage's name: that stage's final EMA weights — MaskDM's
  denoising fine-tuning and MaskDiT's unmasking tuning start from the masked stage;
* any other string is a path: a checkpoint file or URI, a ``last`` pointer, a ``checkpoints/``
  folder, a stage folder or a run directory (its last stage); a string that is neither a stage
  of the run nor an existing file is an error that lists the stages (with "did you mean");
* ``dict(stage=NAME, weights="ema"|"model")``: choose EMA or raw weights;
* ``dict(path=..., weights=...)`` or ``dict(path=..., kind="dit"|"maskdit"|"uvit"|"maskdm")``:
  the same paths, or an official release's file (:mod:`mdreg.engine.handoff`).

``batch_size`` is the GLOBAL batch: each of ``W`` processes runs ``grad_accum``
micro-batches of ``batch_size / (W * grad_accum)`` samples per optimizer step
(:func:`micro_batch_size`). ``mask_schedule`` (a ``mask_schedule:*`` component) varies the
mask ratio over the stage's steps, e.g. MaskDiT's unmasking tuning; without it the masker's
ratio is used throughout. ``on_nonfinite``: ``stop`` (default) ends the run at a NaN/inf loss
or gradient; ``skip_step`` drops that optimizer step and counts it, and stops after
``max_skips_in_row`` consecutive skips. ``train.max_steps`` caps every stage's ``steps``; the
lr and mask-ratio schedules still span the declared ``steps`` (``schedule_steps``), so a capped
run is a prefix of the full one.

What is planned is what is built: :func:`plan_stage` makes the stage's :class:`TrainStage`
once (its light components: objective, masker, sampler, schedules, the metric), with its
name, seed, capped steps, parent and resolved ``init_from``; the planner checks it and
:func:`mdreg.engine.parts.build_parts` builds the heavy parts (model, EMA, optimizer, data)
around that same object.

The run-wide ``train`` section is a typed schema, :class:`TrainSettings`, parsed once per
process (:func:`mdreg.runs.plan.make_plan`): types by omegaconf's structured configs
(:func:`mdreg.config.schema.load_section`: ``train.seed=abc`` fails naming the key), then
ranges (:meth:`TrainSettings.__post_init__`), and a key the schema does not know
(``+train.foo=1``) is an error listing the valid ones.
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from mdreg.config.instantiate import instantiate
from mdreg.config.schema import hint as _hint
from mdreg.config.schema import load_section, require
from mdreg.config.tree import to_plain
from mdreg.engine.optim import check_ema_settings, check_precision
from mdreg.errors import ConfigError, did_you_mean
from mdreg.io import is_uri
from mdreg.registry import STAGES

ON_NONFINITE = ("stop", "skip_step")
OFFICIAL_KINDS = ("dit", "maskdit", "uvit", "maskdm")  # init_from.kind: official releases mdreg reads
EMA_DEFAULTS = {"decay": 0.9999, "every": 1, "start": 0}
SAMPLE_DEFAULTS = {"every": None, "num": 16, "sampler": None, "guidance_scale": 1.0}
INIT_KEYS = ("stage", "path", "weights", "kind")


@dataclass(frozen=True)
class InitFrom:
    """Where a stage's initial weights come from: an earlier ``stage`` of the run (which must
    have reached ``steps``) or a ``path`` (``kind``: an official release's family)."""

    stage: str | None = None
    path: str | None = None
    weights: str = "ema"
    kind: str | None = None
    steps: int | None = None

    def describe(self) -> str:
        return f"stage {self.stage!r}" if self.stage else str(self.path)


@STAGES.register("train")
class TrainStage:
    """One training stage (masked pre-training, denoising fine-tuning, unmasking tuning, ...).

    Built by :func:`plan_stage`, which also sets what the run decides: ``name``, ``seed``,
    ``steps`` (capped by ``train.max_steps``; ``schedule_steps`` keeps the declared count),
    ``hflip`` (``data.hflip`` unless the stage sets its own), ``parent`` (the earlier stage it
    starts from) and ``init_from`` (an :class:`InitFrom`).
    ``dataset`` (a stage-specific dataset, e.g. MaskDM's transfer fine-tuning) stays a config
    node here: :func:`mdreg.engine.parts.build_parts` builds it, and planning never reads data."""

    def __init__(self, steps: int, batch_size: int, objective: Any, masker: Any = None, mask_schedule: Any = None,
                 optimizer: Any = None, lr_schedule: Any = None, grad_clip: float | None = None, grad_accum: int = 1,
                 ema: dict | None = None, precision: str = "fp32", init_from: Any = None, label_dropout: float = 0.0,
                 hflip: float | None = None, dataset: Any = None, sample: dict | None = None,
                 on_nonfinite: str = "stop", max_skips_in_row: int = 10, evaluate: Any = None):
        self.ema = check_settings(steps, batch_size, grad_accum, precision, grad_clip, label_dropout, ema,
                                  on_nonfinite, max_skips_in_row)
        self.steps = self.schedule_steps = steps
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.objective, self.masker, self.mask_schedule = objective, masker, mask_schedule
        self.optimizer, self.lr_schedule, self.grad_clip = optimizer, lr_schedule, grad_clip
        self.precision, self.label_dropout, self.hflip = precision, label_dropout, hflip
        self.on_nonfinite, self.max_skips_in_row = on_nonfinite, max_skips_in_row
        self.sample = {**SAMPLE_DEFAULTS, **(sample or {})}
        self.evaluate = evaluate  # a partial metric:* call, completed with the dataset by build_parts
        self.name, self.seed = "", 0
        self.parent: str | None = None
        self.init_from: InitFrom | None = None

    def mask_ratio(self, step: int) -> float:
        """The mask ratio at 0-based ``step`` (0 without a masker)."""
        if self.masker is None:
            return 0.0
        if self.mask_schedule is None:
            return self.masker.ratio
        return float(self.mask_schedule(step, self.schedule_steps, self.masker.ratio))

    def __repr__(self) -> str:
        return f"TrainStage({self.name!r}, steps={self.steps}, batch_size={self.batch_size})"


def plan_stage(cfg: DictConfig, name: str) -> TrainStage:
    """``stages.<name>`` of ``cfg`` built and resolved (see the module docstring); a bad value
    is a ConfigError naming its key."""
    if name not in cfg.stages:
        raise ConfigError(f"the recipe has no stage {name!r}{did_you_mean(name, list(cfg.stages.keys()))} "
                          f"(stages: {', '.join(cfg.stages.keys())})")
    node = cfg.stages[name]
    if not isinstance(node, DictConfig):
        raise ConfigError(f"stages.{name} is {'null' if node is None else repr(node)}, not a stage; drop a stage "
                          f"with ~stages.{name} (and its followers' init_from)")
    for key in ("steps", "batch_size"):
        if key not in node:
            raise ConfigError(f"stages.{name}.{key} is required")
    without_data = copy.deepcopy(node)
    with open_dict(without_data):
        without_data.pop("dataset", None)
        without_data.pop("init_from", None)  # resolved below, against the run's stages
    stage: TrainStage = instantiate(without_data, key=f"stages.{name}")
    stage.name, stage.seed, stage.steps = name, stage_seed(int(cfg.train.seed), name), capped_steps(cfg, name)
    stage.hflip = float(stage.hflip if stage.hflip is not None else cfg.data.get("hflip", 0.0))
    stage.init_from = resolve_init(cfg, name)
    stage.parent = stage.init_from.stage if stage.init_from else None
    return stage


def resolve_init(cfg: DictConfig, name: str) -> InitFrom | None:
    """``stages.<name>.init_from`` as an :class:`InitFrom`, checked against the run's stages
    (the one place every form of ``init_from`` is read; see the module docstring)."""
    raw = cfg.stages[name].get("init_from")
    if raw is None:
        return None
    key, names = f"stages.{name}.init_from", list(cfg.stages.keys())
    value = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else raw
    if isinstance(value, str):
        value = {"stage": value} if value == "previous" or value in names or not _is_path(value) else {"path": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}={value!r}: give null, 'previous', a stage name, a checkpoint path or "
                          f"dict(stage=...|path=..., weights=ema|model, kind=...)")
    unknown = sorted(set(value) - set(INIT_KEYS))
    if unknown:
        raise ConfigError(f"{key} has unknown keys {unknown}{did_you_mean(unknown[0], INIT_KEYS)} "
                          f"(allowed: {', '.join(INIT_KEYS)})")
    if ("stage" in value) == ("path" in value):
        raise ConfigError(f"{key} needs exactly one of 'stage' or 'path', got {value!r}")
    weights, kind = value.get("weights", "ema"), value.get("kind")
    if weights not in ("ema", "model"):
        raise ConfigError(f"{key}.weights={weights!r}: choose ema or model")
    if kind is not None and "path" not in value:
        raise ConfigError(f"{key}.kind={kind!r} (an official checkpoint's family) needs {key}.path")
    if kind is not None and kind not in OFFICIAL_KINDS:
        raise ConfigError(f"{key}.kind={kind!r} is not an official checkpoint kind{did_you_mean(str(kind), OFFICIAL_KINDS)} "
                          f"({', '.join(OFFICIAL_KINDS)})")
    if "path" in value:
        path = str(value["path"])
        if not is_uri(path) and not Path(path).exists():
            raise ConfigError(f"{key}: {path!r} does not exist; give a checkpoint file, a `last` pointer, a "
                              f"checkpoints folder, a stage folder or a run directory")
        return InitFrom(path=path, weights=weights, kind=kind)
    parent = _earlier_stage(str(value["stage"]), name, names, key)
    return InitFrom(stage=parent, weights=weights, steps=capped_steps(cfg, parent))


def _is_path(text: str) -> bool:
    return is_uri(text) or Path(text).exists()


def _earlier_stage(init: str, name: str, names: list[str], key: str) -> str:
    index = names.index(name)
    if init == "previous":
        if index == 0:
            raise ConfigError(f"{key}='previous' but {name!r} is the first stage (stages: {', '.join(names)}); set "
                              f"{key}=null to train it from scratch")
        return names[index - 1]
    if init not in names:
        raise ConfigError(f"{key}={init!r} names neither a stage of this run{did_you_mean(init, names)} (stages: "
                          f"{', '.join(names)}) nor an existing file; give a stage, a checkpoint path, or null to "
                          f"train {name!r} from scratch")
    if names.index(init) >= index:
        raise ConfigError(f"{key}={init!r}: stages run in the order they are declared and {init!r} comes after "
                          f"{name!r}; declare {init!r} first")
    return init


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
    check_ema_settings(**settings)
    return settings


def capped_steps(cfg: DictConfig, name: str) -> int:
    """``stages.<name>.steps``, capped by ``train.max_steps`` when that is set."""
    steps, cap = int(cfg.stages[name].steps), cfg.train.get("max_steps")
    return min(steps, int(cap)) if cap else steps


def stage_seed(seed: int, stage_name: str) -> int:
    """The stage's seed: ``train.seed`` mixed with the stage name (stages draw independently)."""
    return (seed * 1_000_003 + zlib.crc32(stage_name.encode())) % (2 ** 31)


def micro_batch_size(batch_size: int, grad_accum: int, world: int, name: str, where: str = "") -> int:
    """Per-process micro-batch; the global batch must split evenly over ranks and accumulation.
    ``where`` says where the world size came from (e.g. "2 nodes x 4 GPUs")."""
    parts = world * grad_accum
    if batch_size % parts:
        raise ConfigError(f"stages.{name}.batch_size={batch_size} is the global batch and must be divisible by "
                          f"world size {world}{f' ({where})' if where else ''} x stages.{name}.grad_accum "
                          f"{grad_accum} = {parts}; change the batch size, grad_accum or the number of processes")
    return batch_size // parts


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
        """Check ``train`` (unknown keys, types, then ranges) and return it typed; one ConfigError
        names every bad key."""
        known = [f.name for f in fields(cls)]
        unknown = [f"train.{k} is not a train setting{did_you_mean(str(k), known)} (train settings: "
                   f"{', '.join(known)})" for k in train.keys() if k not in known]
        given = {k: to_plain(train[k]) for k in train.keys() if k in known}
        return load_section(cls, given, lambda key, value: f"train.{key}={value!r}", problems=unknown)
