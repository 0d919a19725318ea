"""Everything one training stage is made of, built from the config: :class:`StageParts`.

``build_stage(cfg, name, env)`` instantiates the stage's components (model, EMA, optimizer,
precision, dataset, transform, objective, masker, schedules, generator) and checks that
they fit together. It reads no file, writes none and sets no process-wide state (the
model is initialised under a forked RNG), so the trainer, the benchmark, sampling and
evaluation all start from the same parts and nothing else. Restoring a checkpoint or a
hand-off is the trainer's job (:meth:`mdreg.engine.trainer.Trainer.fit`).

``build_stage(..., data=False)`` leaves the dataset out (sampling needs no training data),
and on ``env.device == meta`` it is the planner's check (:func:`check_stage`): every light
component and the backbone are built on the ``meta`` device, so a bad value fails at
``--dry-run``, before anything waits in a Slurm queue.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from mdreg.config import instantiate
from mdreg.engine.distributed import DistEnv
from mdreg.engine.optim import EMA
from mdreg.engine.optim import build_optimizer
from mdreg.engine.optim import Precision
from mdreg.engine.stage import TrainStage, effective_steps, micro_batch_size, stage_parent, stage_seed
from mdreg.errors import ConfigError

META = torch.device("meta")


@dataclass
class StageParts:
    """The built stage ``name``: what one optimizer step, a checkpoint and a sample grid need."""

    name: str
    seed: int                          # train.seed mixed with the stage name
    steps: int                         # optimizer steps (stages.NAME.steps, capped by train.max_steps)
    schedule_steps: int                # stages.NAME.steps: lr and mask-ratio schedules span it even when capped
    batch_size: int                    # the global batch
    grad_accum: int
    micro_batch: int                   # samples per process and micro-step
    device: torch.device
    model: nn.Module                   # the plain module on ``device`` (no DDP/compile wrapper)
    ema: EMA                           # None only in the planner's meta-device check
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    lr_schedule: Callable[[int, int], float] | None
    grad_clip: float | None
    precision: Precision
    dataset: Any                       # None when built with data=False
    transform: Any
    objective: Any
    masker: Any
    mask_schedule: Any
    hflip: float
    label_dropout: float
    generator: torch.Generator         # re-keyed per micro-batch (mdreg.rng)
    sample_shape: tuple[int, int, int]  # what the model denoises, (C, H, W)
    sample: dict                       # the stage's sample-grid settings (every, num, sampler, guidance)
    init_from: dict | None             # {"stage": PARENT, "weights", "steps"} or {"path", "weights", "kind"}
    on_nonfinite: str
    max_skips_in_row: int
    evaluate: Any                      # a metric:* scoring sample images (every N steps, at the end), or None

    @property
    def grid(self) -> tuple[int, int]:
        return self.model.grid_size

    def mask_ratio(self, step: int) -> float:
        """The mask ratio at 0-based ``step`` (0 without a masker)."""
        if self.masker is None:
            return 0.0
        if self.mask_schedule is None:
            return self.masker.ratio
        return float(self.mask_schedule(step, self.schedule_steps, self.masker.ratio))

    def num_visible(self, step: int) -> int:
        """Visible tokens per sample at ``step`` (the masker's rounding rule, ``masker.num_masked``)."""
        n = self.grid[0] * self.grid[1]
        return n if self.masker is None else n - self.masker.num_masked(self.mask_ratio(step), n)


def _stage_node(cfg: DictConfig, name: str) -> DictConfig:
    """``stages.<name>`` without its ``dataset`` (built separately, and not at plan time)."""
    node = copy.deepcopy(cfg.stages[name])
    with open_dict(node):
        node.pop("dataset", None)
    return node


def build_model(cfg: DictConfig, seed: int, device: torch.device) -> nn.Module:
    """``cfg.model`` initialised from ``seed`` (identical on every rank) under a forked RNG, on ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if device == META:
            with META:
                return instantiate(cfg.model, key="model")
        return instantiate(cfg.model, key="model").to(device)


def build_stage(cfg: DictConfig, name: str, env: DistEnv, data: bool = True, world_note: str = "") -> StageParts:
    """Build stage ``name`` of ``cfg`` for the process ``env`` (see the module docstring);
    ``world_note`` says where ``env.world_size`` came from, for the batch-split error."""
    if name not in cfg.stages:
        raise ConfigError(f"the recipe has no stage {name!r} (stages: {', '.join(cfg.stages.keys())})")
    key = f"stages.{name}"
    stage: TrainStage = instantiate(_stage_node(cfg, name), key=key)
    seed = stage_seed(int(cfg.train.seed), name)
    host = torch.device("cpu") if env.device == META else env.device
    model = build_model(cfg, seed, env.device)
    transform = instantiate(cfg.data.transform, key="data.transform")
    dataset = None
    if data:
        node, where = (cfg.stages[name].dataset, f"{key}.dataset") if cfg.stages[name].get("dataset") is not None \
            else (cfg.data.dataset, "data.dataset")
        dataset = instantiate(node, key=where)
        check_data(dataset, where, transform, model, stage.batch_size, name)
    check_model(model, stage, name)
    optimizer = build_optimizer(stage.optimizer, model.parameters(), env.device)
    init = stage.init_from
    if init is not None and "stage" in init:
        parent = stage_parent(cfg, name)
        init = {**init, "stage": parent, "steps": effective_steps(cfg, parent)}
    return StageParts(
        name=name, seed=seed, steps=effective_steps(cfg, name), schedule_steps=stage.steps,
        batch_size=stage.batch_size,
        grad_accum=stage.grad_accum,
        micro_batch=micro_batch_size(stage.batch_size, stage.grad_accum, env.world_size, name, world_note),
        device=env.device, model=model, optimizer=optimizer,
        ema=EMA(model, **stage.ema) if env.device != META else None,  # planning: settings checked, no copy
        base_lrs=[g["lr"] for g in optimizer.param_groups], lr_schedule=stage.lr_schedule,
        grad_clip=stage.grad_clip, precision=Precision(stage.precision, host), dataset=dataset,
        transform=transform, objective=stage.objective, masker=stage.masker, mask_schedule=stage.mask_schedule,
        hflip=float(stage.hflip if stage.hflip is not None else cfg.data.get("hflip", 0.0)),
        label_dropout=stage.label_dropout, generator=torch.Generator(host).manual_seed(seed + 1),
        sample_shape=(model.in_chans, *_image_size(model)), sample=stage.sample, init_from=init,
        on_nonfinite=stage.on_nonfinite, max_skips_in_row=stage.max_skips_in_row,
        evaluate=stage.evaluate(dataset) if stage.evaluate is not None and dataset is not None else None)


def _image_size(model: nn.Module) -> tuple[int, int]:
    """(H, W) the model denoises: ``img_size`` squared, or ``input_hw`` (the toys' 1 x D points)."""
    return tuple(getattr(model, "input_hw", None) or (model.img_size, model.img_size))


def check_model(model: nn.Module, stage: TrainStage, name: str) -> None:
    """The stage's settings against the backbone: CFG needs a null class, a masker's shape must
    fit the token grid, the sampler must belong to the objective's family."""
    if stage.label_dropout > 0 and getattr(model, "null_label", None) is None:
        raise ConfigError(f"stages.{name}.label_dropout={stage.label_dropout} needs a class-conditional backbone "
                          f"with a null class (net.null_label) for classifier-free guidance; set it to 0 or use "
                          f"such a backbone")
    if stage.masker is not None and getattr(stage.masker, "ratio", 0.0) > 0:
        try:  # one tiny mask on the CPU: e.g. a block size that does not divide the grid
            stage.masker(1, model.grid_size, torch.Generator().manual_seed(0), "cpu")
        except ValueError as exc:
            raise ConfigError(f"stages.{name}.masker: {exc}") from None
    sampler = stage.sample.get("sampler")
    if sampler is not None and hasattr(sampler, "check"):
        try:
            sampler.check(stage.objective.model_fn(model))
        except ValueError as exc:
            raise ConfigError(f"stages.{name}.sample.sampler: {exc}") from None


def check_data(dataset, where: str, transform, model: nn.Module, batch_size: int, name: str) -> None:
    """The dataset against the stage: at least one global batch, the model's input shape after
    ``data.transform``, labels within the model's classes (and labels at all for a
    class-conditional model), the transform's own check. Each message names ``where``
    (the config key) and the dataset (its root, for files on disk)."""
    size = len(dataset)
    if size < batch_size:
        raise ConfigError(f"{where} has {size} samples, fewer than one global batch of stages.{name}.batch_size="
                          f"{batch_size} ({_describe(dataset)}); add data or lower the batch size")
    check_dataset = getattr(transform, "check_dataset", None)  # e.g. the latent scale vs its store's
    if check_dataset is not None:
        check_dataset(dataset)
    try:
        channels, res = transform.output_shape(dataset.channels, dataset.resolution)
    except ValueError as exc:
        raise ConfigError(f"data.transform: {exc} ({where}: {_describe(dataset)})") from None
    if (channels, res) != (model.in_chans, model.img_size):
        raise ConfigError(f"model expects {model.in_chans} channels at {model.img_size} px but {where} gives "
                          f"{channels} at {res} px after data.transform ({_describe(dataset)}); set model.in_chans / "
                          f"model.img_size or the dataset's resolution / data.transform")
    classes = int(getattr(dataset, "num_classes", 0) or 0)
    model_classes = int(getattr(model, "num_classes", 0) or 0)
    if model_classes and classes > model_classes:
        raise ConfigError(f"{where} has {classes} classes but model.num_classes={model_classes}: labels "
                          f"{model_classes}..{classes - 1} are out of range ({_describe(dataset)}); set "
                          f"model.num_classes={classes} or train on a dataset with at most {model_classes} classes")
    if model_classes and not classes and hasattr(dataset, "num_classes"):
        raise ConfigError(f"model.num_classes={model_classes} makes the model class-conditional but {where} has no "
                          f"labels ({_describe(dataset)}); give the data labels (an image folder: labels=true, one "
                          f"sub-folder per class) or use an unconditional model")


def _describe(dataset) -> str:
    describe = getattr(dataset, "describe", None)
    return describe() if describe is not None else f"{type(dataset).__name__} of {len(dataset)} samples"


def check_stage(cfg: DictConfig, name: str, world_size: int = 1, where: str = "") -> None:
    """The planner's check of stage ``name``: everything but the data (and the EMA copy),
    built on ``meta``, and the batch split over ``world_size`` processes (``where``: how that
    number came about). Sweep elements that share what is checked are checked once."""
    key = (OmegaConf.to_yaml(cfg.model), OmegaConf.to_yaml(_stage_node(cfg, name)), OmegaConf.to_yaml(cfg.data),
           tuple(cfg.stages.keys()), cfg.train.get("max_steps"), world_size, where)
    if key not in _CHECKED:
        build_stage(cfg, name, DistEnv(world_size=world_size, device=META), data=False, world_note=where)
        _CHECKED.add(key)


_CHECKED: set[tuple] = set()  # check_stage keys that passed (a 256-element sweep of one model builds it once)
