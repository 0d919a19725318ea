"""The EDM noise process (Karras et al. 2022), as MaskDiT trains and samples it (appendix 6.1).

Forward process ``x = x0 + sigma * n``. Training draws ``ln(sigma) ~ N(P_mean, P_std^2)``
(Karras Table 1: -1.2, 1.2) and weights the denoising loss by
``lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2``. Sampling walks the
time steps ``sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
(Karras eq. 5; rho 7, sigma 80 .. 0.002), followed by sigma_N = 0.
"""
from __future__ import annotations

import torch

from mdreg.registry import NOISE_SCHEDULES
from mdreg.rng import randn


@NOISE_SCHEDULES.register("edm")
class EDMSchedule:
    """EDM: log-normal training sigmas, sigma_data-based loss weight, rho-spaced sampling sigmas."""

    kind = "edm"

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0):
        if P_std <= 0 or sigma_data <= 0 or not 0 < sigma_min < sigma_max or rho <= 0:
            raise ValueError(f"edm schedule needs P_std > 0, sigma_data > 0, 0 < sigma_min < sigma_max and rho > 0; "
                             f"got P_std={P_std}, sigma_data={sigma_data}, sigma_min={sigma_min}, "
                             f"sigma_max={sigma_max}, rho={rho}")
        self.P_mean, self.P_std, self.sigma_data = P_mean, P_std, sigma_data
        self.sigma_min, self.sigma_max, self.rho = sigma_min, sigma_max, rho

    def sample_sigma(self, batch: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
        """Training noise levels (B,): ``exp(P_mean + P_std * N(0, 1))``."""
        return (randn((batch,), generator, device) * self.P_std + self.P_mean).exp()

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2 (Karras Table 1)."""
        return (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2

    def sampling_sigmas(self, steps: int) -> torch.Tensor:
        """``steps + 1`` noise levels in float64, from sigma_max down to sigma_min, then 0 (Karras eq. 5)."""
        if steps < 1:
            raise ValueError(f"EDM sampling needs steps >= 1, got {steps}")
        i = torch.arange(steps, dtype=torch.float64)
        hi, lo = self.sigma_max ** (1 / self.rho), self.sigma_min ** (1 / self.rho)
        frac = i / (steps - 1) if steps > 1 else i
        sigmas = (hi + frac * (lo - hi)) ** self.rho
        return torch.cat([sigmas, sigmas.new_zeros(1)])

    def __repr__(self) -> str:
        return (f"EDMSchedule(P_mean={self.P_mean}, P_std={self.P_std}, sigma_data={self.sigma_data}, "
                f"sigma={self.sigma_max}..{self.sigma_min}, rho={self.rho})")
