"""Training objectives of the EDM family: plain EDM and MaskDiT's masked objective.

Both draw ``sigma`` from the ``edm`` schedule, noise ``x = x0 + sigma n`` and evaluate the
preconditioned denoiser ``D`` (:mod:`mdreg.diffusion.preconditioning`); ``model_fn`` gives
EDM samplers that denoiser. Labels (with the trainer's label dropout already applied) go
to the backbone unchanged.
"""
from __future__ import annotations

import torch

from mdreg.diffusion.model_fn import check_guided_channels
from mdreg.diffusion.objectives import LossOutput, backbone_of, per_patch_mean
from mdreg.diffusion.preconditioning import EDMDenoiser, EDMPreconditioning, as_column
from mdreg.diffusion.schedules_edm import EDMSchedule
from mdreg.models.layers import patchify
from mdreg.registry import OBJECTIVES
from mdreg.rng import randn


class EDMObjectiveBase:
    """Noise at log-normal sigmas and denoise through the EDM preconditioning."""

    def __init__(self, schedule: EDMSchedule | None = None, guided_channels: int | None = None):
        self.guided_channels = check_guided_channels(guided_channels)
        schedule = schedule if schedule is not None else EDMSchedule()
        if getattr(schedule, "kind", None) != "edm":
            raise ValueError(f"{type(self).__name__} needs the 'edm' noise schedule, got {schedule!r}; discrete DDPM "
                             f"schedules go with objectives 'dsm' / 'mdsm'")
        self.schedule = schedule
        self.precond = EDMPreconditioning(schedule.sigma_data)

    def denoised(self, net, x0: torch.Tensor, y, ids_keep, generator) -> tuple[torch.Tensor, ...]:
        """(D(x0 + sigma n), noisy input x0 + sigma n, per-sample loss weight (B, 1, 1, 1))."""
        sigma = self.schedule.sample_sigma(x0.shape[0], generator, x0.device)
        noisy = x0 + as_column(sigma, x0) * randn(x0.shape, generator, x0.device, x0.dtype)
        out = self.precond.denoise(net, noisy, sigma, y, ids_keep)
        return out.float(), noisy.float(), as_column(self.schedule.loss_weight(sigma.float()), out.float())

    def model_fn(self, net, y: torch.Tensor | None = None, guidance_scale: float = 1.0) -> EDMDenoiser:
        return EDMDenoiser(net, self.schedule, y, guidance_scale, self.guided_channels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schedule!r})"


@OBJECTIVES.register("edm")
class EDMLoss(EDMObjectiveBase):
    """EDM loss E lambda(sigma) ||D(x0 + sigma n, sigma) - x0||^2 over all pixels (Karras eq. 2,
    Table 1 weight; MaskDiT eq. 5)."""

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None) -> LossOutput:
        if ids_keep is not None:
            raise ValueError("objective 'edm' trains on all patches but the stage masks tokens; use objective "
                             "'maskdit' for masked training or masker 'none'")
        out, _, weight = self.denoised(net, x0, y, None, generator)
        loss = (weight * (out - x0.float()) ** 2).mean()
        return LossOutput(loss, {"loss": loss.detach()})


@OBJECTIVES.register("maskdit")
class MaskDiTLoss(EDMObjectiveBase):
    """MaskDiT's objective (eqs. 6-8): L = L_DSM + mae_weight * L_MAE.

    * L_DSM (eq. 6): lambda(sigma) (D - x0)^2, averaged over channels and each patch's pixels,
      then over the unmasked patches (``dsm_on="unmasked"``, the paper's default) or over all
      patches (``dsm_on="full"``, Table 2c).
    * L_MAE (eq. 7): on masked patches only, the squared error between D and the noisy input
      x0 + sigma n, the target normalised per patch by its mean and variance (eps 1e-6,
      ``torch.var``'s unbiased estimate, as official ``train_utils/loss.py`` ``mae_loss``); no EDM weight.

    Per-sample means over patches, then the batch mean. Without masking (unmasking tuning
    with the zero-ratio schedule) it is the plain EDM loss.
    """

    def __init__(self, schedule: EDMSchedule | None = None, mae_weight: float = 0.1, dsm_on: str = "unmasked",
                 norm_eps: float = 1e-6, guided_channels: int | None = None):
        super().__init__(schedule, guided_channels)
        if dsm_on not in ("unmasked", "full"):
            raise ValueError(f"maskdit objective: dsm_on must be 'unmasked' or 'full', got {dsm_on!r}")
        if mae_weight < 0:
            raise ValueError(f"maskdit objective: mae_weight must be >= 0, got {mae_weight}")
        self.mae_weight, self.dsm_on, self.norm_eps = mae_weight, dsm_on, norm_eps

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None) -> LossOutput:
        out, noisy, weight = self.denoised(net, x0, y, ids_keep, generator)
        dsm = per_patch_mean(weight * (out - x0.float()) ** 2, net)  # (B, N)
        if ids_keep is None:
            loss = dsm.mean()
            return LossOutput(loss, {"loss": loss.detach(), "dsm": loss.detach()})
        visible = torch.zeros_like(dsm).scatter(1, ids_keep, 1.0)
        dsm_loss = dsm.mean(1) if self.dsm_on == "full" else masked_mean(dsm, visible)
        mae_loss = masked_mean(self.mae_per_patch(out, noisy, net), 1.0 - visible)
        loss = (dsm_loss + self.mae_weight * mae_loss).mean()
        return LossOutput(loss, {"loss": loss.detach(), "dsm": dsm_loss.mean().detach(),
                                 "mae": mae_loss.mean().detach()})

    def mae_per_patch(self, out: torch.Tensor, noisy: torch.Tensor, net) -> torch.Tensor:
        """(B, N): mean squared error of D against the per-patch normalised noisy input (eq. 7)."""
        patch = backbone_of(net).patch_size
        target = patchify(noisy, patch)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + self.norm_eps).sqrt()
        return ((patchify(out, patch) - target) ** 2).mean(-1)


def masked_mean(values: torch.Tensor, weights: torch.Tensor | float) -> torch.Tensor:
    """Per-sample weighted mean over the last axis, (B, N) -> (B,); rows without weight give 0."""
    weights = torch.as_tensor(weights, dtype=values.dtype, device=values.device).expand_as(values)
    return (values * weights).sum(1) / weights.sum(1).clamp(min=1)
