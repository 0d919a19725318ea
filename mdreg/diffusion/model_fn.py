"""Adapters that turn a trained network into what samplers call.

Objectives know how their network is parameterised; ``objective.model_fn(net, ...)``
returns one of these, and samplers only ever see this interface:

* :class:`EpsModel` — ``eps(x_t, t)`` for discrete DDPM schedules (``.schedule`` attached);
  ``eps_and_variance(x_t, t)`` adds the learned-variance values v of a learned-sigma network
  (DiT), which ``sampler:ddpm_learned`` needs;
* EDM samplers call ``D(x, sigma)`` (see :mod:`mdreg.diffusion.preconditioning`).

Classifier-free guidance (Ho & Salimans 2022): ``out = uncond + s * (cond - uncond)``,
the unconditional pass using the network's null label (``net.null_label``), on the first
``guided_channels`` output channels (:func:`guided`).
"""
from __future__ import annotations

from typing import Callable

import torch

PREDICTIONS = ("eps", "v", "x0")  # what a discrete-schedule network outputs (objectives' ``prediction``)


def check_guided_channels(guided_channels: int | None) -> int | None:
    """``None`` (every data channel) or a positive channel count; the objectives call it at construction."""
    if guided_channels is not None and (isinstance(guided_channels, bool) or int(guided_channels) < 1):
        raise ValueError(f"guided_channels must be None (guide every data channel) or a count >= 1, "
                         f"got {guided_channels!r}; DiT's official sampling guides 3")
    return None if guided_channels is None else int(guided_channels)


def guided(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor], x: torch.Tensor,
           cond: torch.Tensor, y: torch.Tensor | None, scale: float, null_label: int | None,
           guided_channels: int | None = None) -> torch.Tensor:
    """Evaluate ``fn(x, cond, y)`` with classifier-free guidance ``scale`` (1 = plain conditional).

    Channels ``[:g]`` of the output (g = ``guided_channels``, None = all ``x.shape[1]`` data
    channels) become ``u + s (c - u)``; every later channel keeps the conditional pass ``c``.
    That is DiT's ``forward_with_cfg`` (``models.py``): it guides ``model_out[:, :3]`` "for exact
    reproducibility" (a comment there gives ``[:, :in_channels]`` as the standard choice) and
    concatenates the rest — the 4th latent channel and all learned-sigma channels — from the
    conditional half of the batch, whose samples ``sample_ddp.py`` keeps. MaskDiT
    (``models/maskdit.py`` ``forward_with_cfg``) guides ``[:, :in_channels]``: all 4.
    """
    if y is None or scale == 1.0:
        return fn(x, cond, y)
    if null_label is None:
        raise ValueError("classifier-free guidance needs a network with a null label (net.null_label)")
    g = x.shape[1] if guided_channels is None else guided_channels
    if g > x.shape[1]:
        raise ValueError(f"guided_channels={g} but the data has {x.shape[1]} channels; use at most {x.shape[1]} "
                         f"(or None for all)")
    y_null = torch.full_like(y, null_label)
    both = fn(torch.cat([x, x]), torch.cat([cond, cond]), torch.cat([y, y_null]))
    c, u = both.chunk(2)
    return torch.cat([u[:, :g] + scale * (c[:, :g] - u[:, :g]), c[:, g:]], dim=1)


class EpsModel:
    """``eps_theta(x_t, t)`` of a network trained with a discrete schedule (MaskDM eq. 1).

    A learned-sigma network (DiT, ``learn_sigma=True``) outputs 2C channels ``[eps | v]``;
    ``__call__`` gives eps, :meth:`eps_and_variance` both (guidance as in :func:`guided`)."""

    kind = "discrete"

    def __init__(self, net: torch.nn.Module, schedule, y: torch.Tensor | None = None, guidance_scale: float = 1.0,
                 guided_channels: int | None = None, prediction: str = "eps"):
        self.net, self.schedule, self.y, self.guidance_scale = net, schedule, y, guidance_scale
        self.guided_channels, self.prediction = guided_channels, prediction

    def output(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The (guided) network output, all its channels."""
        def call(x_, t_, y_):
            return self.net(x_, t_.to(x_.dtype), y_).to(x_.dtype)
        return guided(call, x, t, self.y, self.guidance_scale, getattr(self.net, "null_label", None),
                      self.guided_channels)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Epsilon at ``x_t``, converted from the network's ``prediction`` (v or x0) if needed."""
        out = self.output(x, t)[:, :x.shape[1]]
        if self.prediction == "eps":
            return out
        s = self.schedule  # coefficients formed in float64, cast at use (see mdreg.diffusion.schedules)
        if self.prediction == "v":  # eps = sqrt(abar) v + sqrt(1 - abar) x_t
            return s.at(s.sqrt_abar, t, x) * out + s.at(s.sqrt_one_minus_abar, t, x) * x
        # from x0: eps = (sqrt(1/abar) x_t - x0) / sqrt(1/abar - 1), DiT ``_predict_eps_from_xstart``
        return (s.at(s.sqrt_recip_abar, t, x) * x - out) / s.at(s.sqrt_recipm1_abar, t, x).clamp(min=1e-4)

    def eps_and_variance(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps, v): v in [-1, 1] interpolates log beta~_t (v = -1) and log beta_t (v = 1)."""
        out = self.output(x, t)
        if self.prediction != "eps":
            raise ValueError("a learned variance goes with epsilon prediction (objective 'iddpm_hybrid')")
        if out.shape[1] != 2 * x.shape[1]:
            raise ValueError(f"a learned variance needs a network that outputs 2 x {x.shape[1]} channels (eps and "
                             f"variance values: backbone learn_sigma=True), this one outputs {out.shape[1]}")
        return out[:, :x.shape[1]], out[:, x.shape[1]:]
