"""Noise schedules of the discrete variance-preserving process (DDPM, Ho et al. 2020).

``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` with ``abar_t = prod_{s<=t} (1 - beta_s)``
(MaskDM eq. 1/4 use this forward process). Timesteps are integers ``0 .. T-1``.

Precision follows DiT (``diffusion/gaussian_diffusion.py`` at 29e4fa6, l. 168 "Use float64 for
accuracy", l. 183-187): every coefficient (sqrt(abar), sqrt(1 - abar), sqrt(1/abar),
sqrt(1/abar - 1), the posterior's) is a float64 table, and only the finished coefficient is cast
to the data's dtype (``_extract_into_tensor``: ``arr[timesteps].float()``). Casting abar first
loses digits where abar is near 1: 1 - abar_0 = 1e-4 keeps only ~3 significant digits in fp32.
"""
from __future__ import annotations

import math

import torch

from mdreg.registry import NOISE_SCHEDULES
from mdreg.rng import randint


class DiscreteSchedule:
    """A DDPM forward process given by its betas."""

    kind = "discrete"

    def __init__(self, betas: torch.Tensor):
        betas = betas.to(torch.float64)
        if betas.ndim != 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.num_timesteps = len(betas)
        prev = torch.cat([betas.new_ones(1), self.alphas_cumprod[:-1]])
        # the posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta~_t) (Ho et al. eq. 6-7)
        self.posterior_variance = betas * (1 - prev) / (1 - self.alphas_cumprod)
        self.posterior_x0_coef = betas * prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_xt_coef = (1 - prev) * (1 - betas).sqrt() / (1 - self.alphas_cumprod)
        # beta~_0 = 0: its log takes beta~_1 instead (iDDPM / DiT ``posterior_log_variance_clipped``)
        clipped = torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]) if len(betas) > 1 else betas
        self.posterior_log_variance_clipped = clipped.log()
        self.log_betas = betas.log()
        self.timestep_map = list(range(len(betas)))
        # q(x_t | x_0) and its inversions (DiT l. 183-187), formed in float64
        abar = self.alphas_cumprod
        self.sqrt_abar = abar.sqrt()
        self.sqrt_one_minus_abar = (1 - abar).sqrt()
        self.sqrt_recip_abar = (1 / abar).sqrt()
        self.sqrt_recipm1_abar = (1 / abar - 1).sqrt()

    def abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """alpha-bar at integer timesteps ``t`` (B,), shaped to broadcast against ``like``.
        ``t = -1`` means "before the first step" (alpha-bar = 1). In ``like``'s dtype: form
        coefficients from the float64 tables (:meth:`at`), not from this value."""
        table = torch.cat([self.alphas_cumprod.new_ones(1), self.alphas_cumprod]).to(like.device)
        out = table[(t + 1).long().to(like.device)]
        return out.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def at(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` for integer timesteps ``t`` (B,), in ``like``'s dtype, shaped to broadcast against it."""
        out = table.to(like.device)[t.long().to(like.device)]
        return out.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (Ho et al. eq. 7); at t = 0 it is x0."""
        return self.at(self.posterior_x0_coef, t, x_t) * x0 + self.at(self.posterior_xt_coef, t, x_t) * x_t

    def respaced(self, timesteps: list[int]) -> "DiscreteSchedule":
        """The chain that visits only ``timesteps`` (ascending): its step i has beta
        ``1 - abar[t_i] / abar[t_{i-1}]`` (Nichol & Dhariwal sec. 4; DiT ``respace.py``
        ``SpacedDiffusion``), and ``timestep_map[i] = t_i`` is what the network is given."""
        if sorted(set(timesteps)) != list(timesteps) or timesteps[0] < 0 or timesteps[-1] >= self.num_timesteps:
            raise ValueError(f"respaced timesteps must be ascending, distinct and in [0, {self.num_timesteps}), "
                             f"got {timesteps[:3]}...{timesteps[-3:]}")
        kept = self.alphas_cumprod[list(timesteps)]
        chain = DiscreteSchedule(1 - kept / torch.cat([kept.new_ones(1), kept[:-1]]))
        chain.timestep_map = list(timesteps)
        return chain

    def abar_at(self, t: int) -> float:
        """alpha-bar at one integer timestep as a float (``t = -1``: 1.0); samplers use it
        because every sample of a batch is at the same step."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None,
                         device: torch.device | str = "cpu") -> torch.Tensor:
        """Uniform integer timesteps in [0, T)."""
        return randint(0, self.num_timesteps, (batch,), generator, device)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0): ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (Ho et al. eq. 4; DiT ``q_sample``)."""
        return self.at(self.sqrt_abar, t, x0) * x0 + self.at(self.sqrt_one_minus_abar, t, x0) * noise

    def x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps``, DiT's ``_predict_xstart_from_eps`` form."""
        return self.at(self.sqrt_recip_abar, t, x_t) * x_t - self.at(self.sqrt_recipm1_abar, t, x_t) * eps

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.num_timesteps})"


@NOISE_SCHEDULES.register("ddpm_linear", aliases=("linear",))
class DDPMLinear(DiscreteSchedule):
    """DDPM linear betas from 1e-4 to 0.02 over T=1000 steps (Ho et al. 2020, sec. 4; MaskDM Table 5 "linear")."""

    def __init__(self, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.beta_start, self.beta_end = beta_start, beta_end
        super().__init__(torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64))


@NOISE_SCHEDULES.register("ddpm_cosine", aliases=("cosine",))
class DDPMCosine(DiscreteSchedule):
    """Cosine alpha-bar of Nichol & Dhariwal 2021 (eq. 17, s=0.008, betas clipped at 0.999); MaskDM Table 5 "cosine"."""

    def __init__(self, num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999):
        self.s = s
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
        super().__init__(betas)
