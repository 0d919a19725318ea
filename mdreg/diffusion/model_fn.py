"""Adapters that turn a trained network into what samplers call.

Objectives know how their network is parameterised; ``objective.model_fn(net, ...)``
returns one of these, and samplers only ever see this interface:

* :class:`EpsModel` — ``eps(x_t, t)`` for discrete DDPM schedules (``.schedule`` attached);
* EDM samplers call ``D(x, sigma)`` (see :mod:`mdreg.diffusion.preconditioning`).

Classifier-free guidance (Ho & Salimans 2022): ``out = uncond + s * (cond - uncond)``,
the unconditional pass using the network's null label (``net.null_label``).
"""
from __future__ import annotations

from typing import Callable

import torch


def guided(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor], x: torch.Tensor,
           cond: torch.Tensor, y: torch.Tensor | None, scale: float, null_label: int | None) -> torch.Tensor:
    """Evaluate ``fn(x, cond, y)`` with classifier-free guidance ``scale`` (1 = plain conditional)."""
    if y is None or scale == 1.0:
        return fn(x, cond, y)
    if null_label is None:
        raise ValueError("classifier-free guidance needs a network with a null label (net.null_label)")
    y_null = torch.full_like(y, null_label)
    both = fn(torch.cat([x, x]), torch.cat([cond, cond]), torch.cat([y, y_null]))
    c, u = both.chunk(2)
    return u + scale * (c - u)


class EpsModel:
    """``eps_theta(x_t, t)`` of a network trained with a discrete schedule (MaskDM eq. 1)."""

    kind = "discrete"

    def __init__(self, net: torch.nn.Module, schedule, y: torch.Tensor | None = None, guidance_scale: float = 1.0):
        self.net, self.schedule, self.y, self.guidance_scale = net, schedule, y, guidance_scale

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        def call(x_, t_, y_):  # learned-sigma channels (DiT) beyond the first C are not epsilon
            return self.net(x_, t_.to(x_.dtype), y_)[:, :x_.shape[1]].to(x_.dtype)
        return guided(call, x, t, self.y, self.guidance_scale, getattr(self.net, "null_label", None))
