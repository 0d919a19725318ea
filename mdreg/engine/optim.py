"""How a stage updates its weights: the optimizer, its learning-rate schedule, the numeric
precision (autocast and fp16 loss scaling) and the EMA of the weights.

* Optimizer: a recipe gives it as a partial call (``L(torch.optim.AdamW)(_partial_=True,
  lr=..., betas=..., weight_decay=...)``, see ``recipes/common/optim.py``); the trainer supplies
  the parameters. On CUDA and on the CPU, Adam/AdamW get ``fused=True`` (one kernel for the
  whole update: several times faster than the per-tensor loop torch uses by default on the CPU,
  0.8 vs 4.1 ms per step for the quickstart's 1.07M-parameter U-ViT) unless the recipe chose
  ``fused``/``foreach`` itself; the math is the same (results differ in the last bit), so
  recipes stay device-neutral. Without an
  optimizer node a stage uses AdamW at lr 1e-4 (MaskDiT's setting).
* Learning-rate schedules (``lr_schedule:*``): ``schedule(step, total_steps) -> factor`` times
  the optimizer's lr. Linear warmup from ``warmup_start`` x lr to lr over ``warmup_steps``, then
  constant (MaskDM, MaskDiT) or cosine decay to ``min_factor`` x lr. Computed from the step
  alone, so resuming needs no scheduler state.
* Precision (a stage key): ``fp32`` (MaskDiT's unmasking tuning runs "full precision
  (tf32)"), ``bf16`` (preferred mixed precision: no loss scaling, and the fp16 NaNs users hit
  after long MaskDiT runs, issue #4, do not occur) or ``fp16`` (maskdm trains in fp16):
  autocast to float16 with a :class:`torch.amp.GradScaler`, whose state is checkpointed so
  that a resumed run scales exactly as the uninterrupted one. Parameters, optimizer state and
  EMA stay float32 in every mode. TF32 is a process-wide switch (``train.tf32``,
  :mod:`mdreg.engine.distributed`).
* EMA, the model every paper samples from: ``decay`` is applied once per ``every`` optimizer
  steps (MaskDM Table 5: "0.999 every 10"); before ``start`` the average copies the weights.
  Buffers are copied, not averaged.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
from typing import Any, Callable

import torch
from torch import nn

from mdreg.registry import LR_SCHEDULES

FUSABLE = (torch.optim.AdamW, torch.optim.Adam)
FUSED_DEVICES = ("cuda", "cpu")  # where torch's fused Adam/AdamW kernels run


def default_optimizer() -> Callable:
    return functools.partial(torch.optim.AdamW, lr=1e-4)


def device_kwargs(factory: Any, device: torch.device) -> dict:
    """Extra keyword arguments the trainer adds for ``device``: ``{"fused": True}`` for an
    Adam/AdamW partial on CUDA or the CPU that names neither ``fused`` nor ``foreach``."""
    if device.type not in FUSED_DEVICES or not isinstance(factory, functools.partial) or factory.func not in FUSABLE:
        return {}
    if "fused" in factory.keywords or "foreach" in factory.keywords:
        return {}
    return {"fused": True}


def build_optimizer(factory: Any, params, device: torch.device) -> torch.optim.Optimizer:
    """``factory(params, **device_kwargs)``; the stage's optimizer."""
    factory = factory or default_optimizer()
    return factory(params, **device_kwargs(factory, device))


def describe(optimizer: torch.optim.Optimizer) -> str:
    group = optimizer.param_groups[0]
    shown = {k: group[k] for k in ("lr", "betas", "weight_decay", "eps", "fused") if k in group}
    return f"{type(optimizer).__name__}({', '.join(f'{k}={v}' for k, v in shown.items())})"


class WarmupSchedule:
    """Linear warmup shared by the schedules below."""

    def __init__(self, warmup_steps: int = 0, warmup_start: float = 0.0):
        if warmup_steps < 0 or not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"need warmup_steps >= 0 and 0 <= warmup_start <= 1, got {warmup_steps}, {warmup_start}")
        self.warmup_steps, self.warmup_start = warmup_steps, warmup_start

    def warmup(self, step: int) -> float | None:
        if step < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * (step + 1) / self.warmup_steps
        return None


@LR_SCHEDULES.register("constant", aliases=("warmup_constant",))
class WarmupConstant(WarmupSchedule):
    """Linear warmup then a constant lr (MaskDM Table 5; MaskDiT: constant 1e-4, no warmup)."""

    def __call__(self, step: int, total_steps: int) -> float:
        return self.warmup(step) or 1.0


@LR_SCHEDULES.register("cosine", aliases=("warmup_cosine",))
class WarmupCosine(WarmupSchedule):
    """Linear warmup then cosine decay towards ``min_factor``. ``step`` is 0-based, and the
    factor reaches ``min_factor`` at ``step = total_steps``, one past the last step (as timm's
    schedulers do), so no step trains at the floor, which is 0 by default.

    One schedule over several stages (pre-training then fine-tuning continuing its cosine,
    recipes/common/toy.py): a stage sets ``offset`` (steps of the schedule trained before it)
    and ``total`` (the steps of all its stages); the defaults (0, None) are the stage alone."""

    def __init__(self, warmup_steps: int = 0, warmup_start: float = 0.0, min_factor: float = 0.0,
                 offset: int = 0, total: int | None = None):
        super().__init__(warmup_steps, warmup_start)
        if offset < 0 or (total is not None and total <= offset):
            raise ValueError(f"need offset >= 0 and total > offset (or None), got {offset}, {total}")
        self.min_factor, self.offset, self.total = min_factor, offset, total

    def __call__(self, step: int, total_steps: int) -> float:
        step, total_steps = step + self.offset, self.total if self.total is not None else self.offset + total_steps
        warm = self.warmup(step)
        if warm is not None:
            return warm
        span = max(1, total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("fp32", *DTYPES)


def check_precision(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"precision must be one of {', '.join(MODES)}, got {mode!r}")


class Precision:
    """Autocast context and gradient scaler of one stage on one device."""

    def __init__(self, mode: str, device: torch.device):
        check_precision(mode)
        self.mode, self.device = mode, device
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self):
        """The context the forward pass and loss run in."""
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.mode])

    @property
    def skips_inf_steps(self) -> bool:
        """fp16 loss scaling skips optimizer steps whose gradients overflowed (and lowers
        the scale): an inf gradient there is routine, not divergence."""
        return self.scaler.is_enabled()


def check_ema_settings(decay: float, every: int, start: int) -> None:
    if not 0.0 <= decay < 1.0 or every < 1 or start < 0:
        raise ValueError(f"ema needs 0 <= decay < 1, every >= 1, start >= 0; got decay {decay}, every {every}, "
                         f"start {start}")


class EMA:
    """Keeps ``self.model``, a frozen copy of the trained model's weights, averaged."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, every: int = 1, start: int = 0):
        check_ema_settings(decay, every, start)
        self.decay, self.every, self.start = decay, every, start
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Call after optimizer step ``step`` (1-based count of steps done)."""
        if step % self.every:
            return
        src = [p.detach() for p in model.parameters()]
        dst = list(self.model.parameters())
        if step <= self.start:
            torch._foreach_copy_(dst, src)
        else:
            torch._foreach_lerp_(dst, src, 1.0 - self.decay)
        for b_dst, b_src in zip(self.model.buffers(), model.buffers()):
            b_dst.copy_(b_src)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
