"""Everything one training stage is made of: :class:`StageParts`, built around the planned
:class:`~mdreg.engine.stage.TrainStage` by :func:`build_parts`.

``build_parts(cfg, stage, env)`` builds the heavy parts of the stage (model, EMA, optimizer,
precision, dataset, transform, generator) for the process ``env`` and checks that they fit
together; the stage's light components (objective, masker, schedules, sampler, metric) are the
planned ``stage``'s own, not built again. It sets no process-wide state (the model is
initialised under a forked RNG). Building the dataset reads it: an image folder is scanned and
its files verified, a latent store's header read. The stage's metric (``evaluate``) is
completed with the dataset here but prepares itself (e.g. the shape metric's classifier) on
first use. Restoring a checkpoint or a hand-off is the trainer's job
(:meth:`mdreg.engine.trainer.Trainer.fit`); sampling, the benchmark and evaluation start from
the same parts.

``build_parts(..., data=False)`` leaves the dataset out (sampling needs no training data).
:func:`check_stage` is the planner's check, before anything runs or waits in a Slurm queue:
the backbone built on the ``meta`` device (once per distinct model config) against the stage
and the batch split over the job's processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mdreg.config.instantiate import instantiate
from mdreg.engine.distributed import DistEnv
from mdreg.engine.optim import EMA, Precision, build_optimizer
from mdreg.engine.stage import TrainStage, micro_batch_size
from mdreg.errors import ConfigError

META = torch.device("meta")


@dataclass
class StageParts:
    """The stage ``stage`` built for one process: what one optimizer step, a checkpoint and a sample grid need."""

    stage: TrainStage                  # the planned stage: name, seed, steps, objective, masker, sampler, ...
    device: torch.device
    model: nn.Module                   # the plain module on ``device`` (no DDP/compile wrapper)
    ema: EMA
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    precision: Precision
    dataset: Any                       # None when built with data=False
    transform: Any
    generator: torch.Generator         # re-keyed per micro-batch (mdreg.rng)
    micro_batch: int                   # samples per process and micro-step
    sample_shape: tuple[int, int, int]  # what the model denoises, (C, H, W)
    evaluate: Any                      # the stage's metric:* (scores sample images), or None

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def grid(self) -> tuple[int, int]:
        return self.model.grid_size

    def num_visible(self, step: int) -> int:
        """Visible tokens per sample at ``step`` (the masker's rounding rule, ``masker.num_masked``)."""
        n = self.grid[0] * self.grid[1]
        masker = self.stage.masker
        return n if masker is None else n - masker.num_masked(self.stage.mask_ratio(step), n)


def build_model(cfg: DictConfig, seed: int, device: torch.device) -> nn.Module:
    """``cfg.model`` initialised from ``seed`` (identical on every rank) under a forked RNG, on ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return instantiate(cfg.model, key="model").to(device)


def dataset_node(cfg: DictConfig, stage: TrainStage) -> tuple[DictConfig, str]:
    """The config node of the stage's training data and its key (the stage's own ``dataset``, else ``data.dataset``)."""
    own = cfg.stages[stage.name].get("dataset")
    return (own, f"stages.{stage.name}.dataset") if own is not None else (cfg.data.dataset, "data.dataset")


def build_parts(cfg: DictConfig, stage: TrainStage, env: DistEnv, data: bool = True, world_note: str = "") -> StageParts:
    """Build ``stage`` of the run ``cfg`` for the process ``env`` (see the module docstring);
    ``world_note`` says where ``env.world_size`` came from, for the batch-split error."""
    model = build_model(cfg, stage.seed, env.device)
    check_model(model, stage)
    transform = instantiate(cfg.data.transform, key="data.transform")
    dataset = None
    if data:
        node, where = dataset_node(cfg, stage)
        dataset = instantiate(node, key=where)
        check_data(dataset, where, transform, model, stage)
    optimizer = build_optimizer(stage.optimizer, model.parameters(), env.device)
    return StageParts(
        stage=stage, device=env.device, model=model, ema=EMA(model, **stage.ema), optimizer=optimizer,
        base_lrs=[g["lr"] for g in optimizer.param_groups], precision=Precision(stage.precision, env.device),
        dataset=dataset, transform=transform, generator=torch.Generator(env.device).manual_seed(stage.seed + 1),
        micro_batch=micro_batch_size(stage.batch_size, stage.grad_accum, env.world_size, stage.name, world_note),
        sample_shape=(model.in_chans, *_image_size(model)),
        evaluate=stage.evaluate(dataset) if stage.evaluate is not None and dataset is not None else None)


def _image_size(model: nn.Module) -> tuple[int, int]:
    """(H, W) the model denoises: ``img_size`` squared, or ``input_hw`` (the toys' 1 x D points)."""
    return tuple(getattr(model, "input_hw", None) or (model.img_size, model.img_size))


def check_model(model: nn.Module, stage: TrainStage) -> None:
    """The stage's settings against the backbone: CFG needs a null class, a masker's shape must
    fit the token grid, the sampler must belong to the objective's family."""
    if stage.label_dropout > 0 and getattr(model, "null_label", None) is None:
        raise ConfigError(f"stages.{stage.name}.label_dropout={stage.label_dropout} needs a class-conditional backbone "
                          f"with a null class (net.null_label) for classifier-free guidance; set it to 0 or use "
                          f"such a backbone")
    if stage.masker is not None and getattr(stage.masker, "ratio", 0.0) > 0:
        try:  # one tiny mask on the CPU: e.g. a block size that does not divide the grid
            stage.masker(1, model.grid_size, torch.Generator().manual_seed(0), "cpu")
        except ValueError as exc:
            raise ConfigError(f"stages.{stage.name}.masker: {exc}") from None
    sampler = stage.sample.get("sampler")
    if sampler is not None and hasattr(sampler, "check"):
        try:
            sampler.check(stage.objective.model_fn(model))
        except ValueError as exc:
            raise ConfigError(f"stages.{stage.name}.sample.sampler: {exc}") from None


def check_data(dataset, where: str, transform, model: nn.Module, stage: TrainStage) -> None:
    """The dataset against the stage: at least one global batch, the model's input shape after
    ``data.transform``, labels within the model's classes (and labels at all for a
    class-conditional model), the transform's own check. Each message names ``where``
    (the config key) and the dataset (its root, for files on disk)."""
    size = len(dataset)
    if size < stage.batch_size:
        raise ConfigError(f"{where} has {size} samples, fewer than one global batch of stages.{stage.name}.batch_size="
                          f"{stage.batch_size} ({_describe(dataset)}); add data or lower the batch size")
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


def meta_model(model: DictConfig) -> nn.Module:
    """The backbone of a ``model`` node built on the ``meta`` device (no memory, no init): what
    planning checks and the FLOP estimate counts. Built once per distinct node (a 256-element
    sweep of one model: once)."""
    key = OmegaConf.to_yaml(model, resolve=True)
    if key not in _META_MODELS:
        with torch.random.fork_rng(devices=[]), META:
            _META_MODELS[key] = instantiate(model, key="model")
    return _META_MODELS[key]


_META_MODELS: dict[str, nn.Module] = {}


def check_stage(cfg: DictConfig, stage: TrainStage, world_size: int = 1, where: str = "") -> None:
    """The planner's check of ``stage``: the backbone on ``meta`` against the stage, and the
    batch split over ``world_size`` processes (``where``: how that number came about)."""
    check_model(meta_model(cfg.model), stage)
    micro_batch_size(stage.batch_size, stage.grad_accum, world_size, stage.name, where)
