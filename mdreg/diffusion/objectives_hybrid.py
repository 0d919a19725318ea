"""The improved-DDPM hybrid objective with a learned variance, as DiT trains with it.

L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, eq. 16; DiT sec. 3.1: "we train
Sigma_theta with the full L"), for a network whose 2C output channels are [eps | v]:

* L_simple = ||eps - eps_theta(x_t, t)||^2, averaged over dimensions (Ho et al. eq. 14);
* L_t of the variational bound (eq. 5) in bits per dimension, at the same t: the KL between
  the true posterior q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t) for t > 0, the decoder's
  negative discretised log-likelihood of x_0 at t = 0 (:mod:`mdreg.diffusion.vlb`). p_theta's
  mean comes from a STOP-GRADIENT copy of eps_theta, so this term trains only the variance
  (iDDPM sec. 3.1; DiT ``diffusion/gaussian_diffusion.py`` ``training_losses``:
  ``frozen_out = th.cat([model_output.detach(), model_var_values], dim=1)``); its variance is
  :func:`~mdreg.diffusion.vlb.learned_log_variance`. No x0 clipping (``clip_denoised=False`` there).

Weight: iDDPM's lambda = 0.001 multiplies L_vlb = sum over t of L_t, estimated by T L_t at a
uniform t, so the per-sample term enters with weight lambda T = 1 at T = 1000. DiT adds it with
weight 1 at any T (``create_diffusion`` defaults to ``LossType.MSE``: no ``num_timesteps / 1000``
factor, which only iDDPM's ``RESCALED_MSE`` applies); ``vlb_weight`` is that per-sample weight.
Per-sample sums, then the batch mean (DiT ``train.py``: ``loss_dict["loss"].mean()``).
"""
from __future__ import annotations

import math

import torch

from mdreg.diffusion.objectives import EpsilonObjective, LossOutput
from mdreg.diffusion.vlb import (
    discretized_gaussian_log_likelihood,
    learned_log_variance,
    mean_over_dims,
    normal_kl,
)
from mdreg.registry import OBJECTIVES
from mdreg.rng import randn


@OBJECTIVES.register("iddpm_hybrid", aliases=("dit_hybrid",))
class HybridLoss(EpsilonObjective):
    """L_simple + ``vlb_weight`` x L_vlb for learned-sigma networks (iDDPM eq. 16; DiT's training loss)."""

    def __init__(self, schedule, vlb_weight: float = 1.0, guided_channels: int | None = None):
        super().__init__(schedule, guided_channels)
        if vlb_weight < 0:
            raise ValueError(f"iddpm_hybrid objective: vlb_weight must be >= 0, got {vlb_weight}")
        self.vlb_weight = float(vlb_weight)

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None) -> LossOutput:
        if ids_keep is not None:
            raise ValueError("objective 'iddpm_hybrid' trains on all pixels but the stage masks tokens; "
                             "use masker 'none'")
        t = self.schedule.sample_timesteps(x0.shape[0], generator, x0.device)
        noise = randn(x0.shape, generator, x0.device, x0.dtype)
        x_t = self.schedule.add_noise(x0, t, noise)
        eps, v = self.split(net(x_t, t.to(x0.dtype), y).float(), x0.shape[1])
        mse = mean_over_dims((noise.float() - eps) ** 2)
        vlb = self.vlb_bits_per_dim(x0.float(), x_t.float(), t, eps.detach(), v)
        loss = (mse + self.vlb_weight * vlb).mean()
        return LossOutput(loss, {"loss": loss.detach(), "mse": mse.mean().detach(), "vlb": vlb.mean().detach()})

    def vlb_bits_per_dim(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                         v: torch.Tensor) -> torch.Tensor:
        """L_t per sample (B,) in bits/dim: decoder NLL at t = 0, KL(q || p_theta) elsewhere."""
        s = self.schedule
        true_mean = s.posterior_mean(x0, x_t, t)
        true_log_var = s.at(s.posterior_log_variance_clipped, t, x0)
        model_mean = s.posterior_mean(s.x0_from_eps(x_t, t, eps), x_t, t)
        model_log_var = learned_log_variance(v, s.at(s.log_betas, t, x0), true_log_var)
        kl = mean_over_dims(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(2.0)
        nll = -mean_over_dims(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)) / math.log(2.0)
        return torch.where(t.to(x0.device) == 0, nll, kl)

    @staticmethod
    def split(out: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """[eps | v] of a learned-sigma output (B, 2C, ...)."""
        if out.shape[1] != 2 * channels:
            raise ValueError(f"objective 'iddpm_hybrid' learns the variance: the backbone must output 2 x {channels} "
                             f"channels (set model.learn_sigma=True), got {out.shape[1]}")
        return out[:, :channels], out[:, channels:]

    def __repr__(self) -> str:
        return f"HybridLoss({self.schedule!r}, vlb_weight={self.vlb_weight})"
