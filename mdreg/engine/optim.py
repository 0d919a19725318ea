"""Building a stage's optimizer from the recipe's optimizer node.

A recipe gives the optimizer as a partial call (``L(torch.optim.AdamW)(_partial_=True,
lr=..., betas=..., weight_decay=...)``, see ``recipes/common/optim.py``); the trainer
supplies the parameters. On CUDA, Adam/AdamW get ``fused=True`` (one kernel for the whole
update, several times faster than the per-tensor loop for large models) unless the recipe
chose ``fused``/``foreach`` itself; the math is the same, so recipes stay device-neutral.
Without an optimizer node a stage uses AdamW at lr 1e-4 (MaskDiT's setting).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch

FUSABLE = (torch.optim.AdamW, torch.optim.Adam)


def default_optimizer() -> Callable:
    return functools.partial(torch.optim.AdamW, lr=1e-4)


def device_kwargs(factory: Any, device: torch.device) -> dict:
    """Extra keyword arguments the trainer adds for ``device``: ``{"fused": True}`` for an
    Adam/AdamW partial on CUDA that names neither ``fused`` nor ``foreach``."""
    if device.type != "cuda" or not isinstance(factory, functools.partial) or factory.func not in FUSABLE:
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
