"""The config a benchmark trains: a recipe's stage, or a model/objective/masker named on the
command line. Either way the data is replaced by random tensors already in the model's
space (the bench times the training step, not the data pipeline or a VAE/DWT transform),
the output goes to a temporary folder, and the step is the trainer's own ``train_step``.
"""
from __future__ import annotations

import inspect

import torch
import yaml
from omegaconf import DictConfig, open_dict

from mdreg.config import L, load_recipe, node
from mdreg.config.lazy import resolve_target, target_ref
from mdreg.config.overrides import apply_overrides
from mdreg.errors import UserError
from mdreg.plugins import import_plugins, plugins_of

# objective -> the noise schedule its family trains with, when none is given
DEFAULT_SCHEDULES = {"dsm": "noise_schedule:ddpm_linear", "mdsm": "noise_schedule:ddpm_linear",
                     "ddpm": "noise_schedule:ddpm_linear", "maskdit": None, "edm": None}


def parse_kv(items: list[str]) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def model_arg(spec: DictConfig, name: str, fallback):
    """A backbone argument as the config sets it, else the target's default."""
    if name in spec:
        return spec[name]
    param = inspect.signature(resolve_target(target_ref(spec), "model")).parameters.get(name)
    return fallback if param is None or param.default is inspect.Parameter.empty else param.default


def named_config(model: str, objective: str, masker: str, mask_ratio: float, batch: int, precision: str,
                 img_size: int | None = None, in_chans: int | None = None, num_classes: int | None = None,
                 model_args: dict | None = None, objective_args: dict | None = None,
                 masker_args: dict | None = None) -> DictConfig:
    """A one-stage config for ``backbone:model`` trained with ``objective:objective``."""
    args = dict(model_args or {})
    for key, value in (("img_size", img_size), ("in_chans", in_chans), ("num_classes", num_classes)):
        if value is not None:
            args[key] = value
    objective_args = dict(objective_args or {})
    schedule = DEFAULT_SCHEDULES.get(objective)
    if schedule and "schedule" not in objective_args:
        objective_args["schedule"] = L(schedule)()
    stage = L("stage:train")(
        steps=10 ** 9, batch_size=batch,
        objective=L(f"objective:{objective}")(**objective_args),
        masker=L(f"masker:{masker}")(ratio=mask_ratio, **(masker_args or {})),
        optimizer=L(torch.optim.AdamW)(_partial_=True, lr=1e-4, weight_decay=0.0),
        precision=precision, ema=dict(decay=0.9999, every=1),
    )
    return node({"train": {"seed": 0, "output_root": "bench", "run_name": None, "max_steps": None,
                           "device": "auto", "tf32": True, "compile": None, "compile_mode": None, "sdpa_backends": None, "log_every": 10 ** 9,
                           "ckpt_every": 0, "keep_last": 1, "num_workers": 0},
                 "model": L(f"backbone:{model}")(**args),
                 "data": {"dataset": L("dataset:shapes")(), "transform": L("transform:identity")(), "hflip": 0.0},
                 "stages": {"bench": stage}})


def recipe_config(recipe: str, stage: str, overrides: list[str]) -> tuple[DictConfig, str]:
    """The recipe's tree with overrides, and the stage to time (default: the first)."""
    cfg = load_recipe(recipe)
    import_plugins(plugins_of(cfg), f"{recipe}: plugins")
    if overrides:
        apply_overrides(cfg, overrides)
    names = list(cfg.stages.keys())
    stage = stage or names[0]
    if stage not in names:
        raise UserError(f"--stage {stage}: the recipe's stages are {', '.join(names)}")
    return cfg, stage


def prepare(cfg: DictConfig, stage: str, batch: int | None, compile_setting, compile_mode: str | None,
            ema: bool, device: str) -> DictConfig:
    """Point the data at random model-space tensors and set the bench's knobs."""
    spec = cfg.model
    with open_dict(cfg):
        cfg.data.dataset = L("dataset:random_tensors")(
            num_items=max(4096, 4 * (batch or cfg.stages[stage].batch_size)),
            channels=int(model_arg(spec, "in_chans", 3)), resolution=int(model_arg(spec, "img_size", 32)),
            num_classes=int(model_arg(spec, "num_classes", 0) or 0))
        cfg.data.transform = L("transform:identity")()
        cfg.data.hflip = 0.0
        cfg.train.compile = compile_setting
        cfg.train.compile_mode = compile_mode
        cfg.train.device = device
        cfg.train.log_every = 10 ** 9
        cfg.train.ckpt_every = 0
        cfg.train.max_steps = None
        st = cfg.stages[stage]
        if batch:
            st.batch_size = batch
        st.grad_accum = 1
        st.init_from = None
        st.steps = 10 ** 9
        st.sample = {"every": None, "num": 0, "sampler": None}
        st.evaluate = None  # a stage's metric scores real data; the bench times steps on random tensors
        if not ema:
            st.ema = {"decay": 0.9999, "every": 10 ** 9, "start": 0}
    return cfg
