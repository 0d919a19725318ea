"""Training objectives of the discrete (DDPM) family.

Every objective is called as ``objective(net, x0, y=None, ids_keep=None, generator=None)``
and returns a :class:`LossOutput`; ``objective.model_fn(net, y, guidance_scale)`` gives
samplers the matching prediction function, guided on the objective's ``guided_channels``
(None = every data channel; DiT's official sampling guides 3, see
:func:`mdreg.diffusion.model_fn.guided`). ``ids_keep`` (B, K) lists the visible patch
tokens (from a masker); ``None`` means no masking.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mdreg.diffusion.model_fn import PREDICTIONS, EpsModel, check_guided_channels
from mdreg.models.layers import gather_tokens, patchify
from mdreg.registry import OBJECTIVES
from mdreg.rng import randn


@dataclass
class LossOutput:
    """The scalar loss to minimise and detached per-step metrics to log."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


def backbone_of(net):
    """The backbone inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    return getattr(net, "module", net)


def per_patch_mean(values: torch.Tensor, net) -> torch.Tensor:
    """(B, C, H, W) -> (B, N): the mean over each patch's p*p*C values, on the backbone's token grid."""
    return patchify(values, backbone_of(net).patch_size).mean(-1)


class EpsilonObjective:
    """Shared machinery: noise x0 at uniform timesteps and regress the prediction target.

    ``prediction``: what the network outputs and the loss compares, at equal weight per
    dimension: ``eps`` (MaskDM eq. 1, both papers' codes), ``v`` = sqrt(abar) eps - sqrt(1 - abar) x0
    (Salimans & Ho 2022, sec. 4: the same model family, better conditioned at high noise, which
    helps small models trained briefly) or ``x0``. Samplers always receive epsilon
    (:class:`~mdreg.diffusion.model_fn.EpsModel` converts)."""

    visible_only = False

    def __init__(self, schedule, guided_channels: int | None = None, prediction: str = "eps"):
        if getattr(schedule, "kind", None) != "discrete":
            raise ValueError(f"{type(self).__name__} needs a discrete DDPM noise schedule (ddpm_linear, ddpm_cosine), "
                             f"got {schedule!r}; EDM schedules go with objective 'edm' or 'maskdit'")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
        self.schedule, self.prediction = schedule, prediction
        self.guided_channels = check_guided_channels(guided_channels)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network should output for ``x_t = sqrt(abar) x0 + sqrt(1 - abar) noise``."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        s = self.schedule  # coefficients formed in float64, cast at use (see mdreg.diffusion.schedules)
        return s.at(s.sqrt_abar, t, x0) * noise - s.at(s.sqrt_one_minus_abar, t, x0) * x0

    def __call__(self, net, x0: torch.Tensor, y: torch.Tensor | None = None, ids_keep: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> LossOutput:
        t = self.schedule.sample_timesteps(x0.shape[0], generator, x0.device)
        noise = randn(x0.shape, generator, x0.device, x0.dtype)
        x_t = self.schedule.add_noise(x0, t, noise)
        # a learned-sigma backbone's variance channels get no loss here: objective 'iddpm_hybrid' trains them
        pred = net(x_t, t.to(x0.dtype), y, ids_keep=ids_keep)[:, :x0.shape[1]]
        err = (pred.float() - self.target(x0, noise, t).float()) ** 2
        if ids_keep is not None and self.visible_only:
            loss = gather_tokens(per_patch_mean(err, net).unsqueeze(-1), ids_keep).mean()
        elif ids_keep is not None:
            raise ValueError(f"{type(self).__name__} trains on all pixels but the stage masks tokens; "
                             f"use objective 'mdsm' for masked pre-training or masker 'none'")
        else:
            loss = err.mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def model_fn(self, net, y: torch.Tensor | None = None, guidance_scale: float = 1.0) -> EpsModel:
        return EpsModel(net, self.schedule, y, guidance_scale, self.guided_channels, self.prediction)

    def __repr__(self) -> str:
        extra = "" if self.prediction == "eps" else f", prediction={self.prediction!r}"
        return f"{type(self).__name__}({self.schedule!r}{extra})"


@OBJECTIVES.register("dsm", aliases=("ddpm",))
class DSM(EpsilonObjective):
    """Denoising score matching, epsilon form (MaskDM eq. 1): E ||eps - eps_theta(x_t, t)||^2 over all pixels."""


@OBJECTIVES.register("mdsm")
class MDSM(EpsilonObjective):
    """Masked DSM (MaskDM eq. 4): the eq. 1 loss on the visible patches only; masked patches
    never enter the network and contribute nothing (not even zero targets)."""

    visible_only = True
