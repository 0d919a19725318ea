"""Ancestral sampling with a learned variance (Nichol & Dhariwal 2021, sec. 3.1 and 4), as DiT samples.

At each step of a (respaced) chain the network gives eps and variance values v:

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)            (clipped only if ``clip`` is set)
    x_{t'} = mu~(x0_hat, x_t) + exp(log Sigma / 2) z,  log Sigma = f log beta_t + (1 - f) log beta~_t,
    f = (v + 1) / 2                                                 (iDDPM eq. 15)

where mu~, beta~ and beta are those of the respaced chain: with S of T steps the chain keeps
timesteps t_0 < ... < t_{S-1}, its step i has beta_i = 1 - abar(t_i) / abar(t_{i-1}), and the
network is called at the original t_i (DiT ``diffusion/respace.py`` ``SpacedDiffusion``:
``new_betas``, ``_WrappedModel``). The last step (t_0 = 0) returns the mean, which there is
x0_hat, without noise. DiT's FID sampling (``sample_ddp.py``): 250 steps of the ``iddpm``
spacing, ``clip_denoised=False`` (``clip=None``).
"""
from __future__ import annotations

import torch

from mdreg.diffusion.samplers import Sampler, noise_like, timestep_pairs
from mdreg.diffusion.vlb import learned_log_variance
from mdreg.registry import SAMPLERS


@SAMPLERS.register("ddpm_learned", aliases=("learned_variance",))
class DDPMLearnedVariance(Sampler):
    """Ancestral sampling with the network's learned variance on a respaced chain (DiT: 250 ``iddpm`` steps)."""

    def __init__(self, steps: int = 250, clip: float | None = None, spacing: str = "iddpm"):
        self.steps, self.clip, self.spacing = steps, clip, spacing

    @torch.no_grad()
    def sample(self, model_fn, shape, generator=None, device="cpu"):
        self.check(model_fn)
        if not hasattr(model_fn, "eps_and_variance"):
            raise ValueError("sampler 'ddpm_learned' needs eps and variance values from the model (an objective whose "
                             "model_fn has eps_and_variance, e.g. 'iddpm_hybrid' or 'dsm')")
        kept = [t for t, _ in timestep_pairs(model_fn.schedule.num_timesteps, self.steps, self.spacing)][::-1]
        chain = model_fn.schedule.respaced(kept)
        x = noise_like(shape, generator, device)
        for i in reversed(range(len(kept))):
            step = torch.full((shape[0],), i, device=x.device, dtype=torch.long)
            eps, v = model_fn.eps_and_variance(x, torch.full_like(step, kept[i]))
            x0 = chain.x0_from_eps(x, step, eps.float())
            if self.clip is not None:
                x0 = x0.clamp(-self.clip, self.clip)
            mean = chain.posterior_mean(x0, x, step)
            if i == 0:
                return mean
            log_var = learned_log_variance(v.float(), chain.at(chain.log_betas, step, x),
                                           chain.at(chain.posterior_log_variance_clipped, step, x))
            x = mean + (0.5 * log_var).exp() * noise_like(x.shape, generator, x.device)
        return x

    def __repr__(self) -> str:
        return f"DDPMLearnedVariance(steps={self.steps}, spacing={self.spacing!r})"
