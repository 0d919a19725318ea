"""The pieces of the variational bound of a discrete diffusion with a learned variance
(Ho et al. 2020 eq. 5; Nichol & Dhariwal 2021, "Improved DDPM", sec. 3.1), as DiT trains it.

* :func:`learned_log_variance` — iDDPM eq. 15: the network's variance values v in [-1, 1]
  interpolate, in log space, between the posterior variance beta~_t (v = -1) and beta_t (v = 1);
* :func:`normal_kl` — KL between two diagonal Gaussians, L_{t-1} for t > 0 (eq. 5);
* :func:`discretized_gaussian_log_likelihood` — the decoder term L_0: the Gaussian's mass on the
  8-bit bin of each value (Ho et al. eq. 13).

Everything is elementwise and in nats; callers average over dimensions and divide by ln 2
(bits per dimension), as DiT's ``diffusion/gaussian_diffusion.py`` ``_vb_terms_bpd`` does.
"""
from __future__ import annotations

import math

import torch

BIN_HALF_WIDTH = 1.0 / 255.0  # values in [-1, 1] from 8-bit pixels: 255 bins of width 2/255


def learned_log_variance(v: torch.Tensor, log_beta: torch.Tensor, log_posterior_variance: torch.Tensor) -> torch.Tensor:
    """log Sigma = f log beta_t + (1 - f) log beta~_t with f = (v + 1) / 2 (iDDPM eq. 15; DiT
    ``p_mean_variance``, ``LEARNED_RANGE``: ``frac = (model_var_values + 1) / 2``)."""
    frac = (v + 1) / 2
    return frac * log_beta + (1 - frac) * log_posterior_variance


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL( N(mean1, e^logvar1) || N(mean2, e^logvar2) ), elementwise, in nats."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) by the tanh approximation 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), within
    2e-4 of the exact CDF. Official quirk kept on purpose: DiT's ``diffusion/diffusion_utils.py``
    (``approx_standard_normal_cdf``, from iDDPM) uses it for the decoder likelihood."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log of the mass N(mean, e^(2 log_scale)) puts on x's bin [x - 1/255, x + 1/255]; the first
    bin (x < -0.999) extends to -inf and the last (x > 0.999) to +inf (Ho et al. eq. 13; DiT
    ``diffusion_utils.py`` ``discretized_gaussian_log_likelihood``, probabilities floored at 1e-12).
    DiT applies it to SD-VAE latents as well, whose values are not 8-bit and often lie outside
    [-1, 1]: such values take the open-ended bins."""
    inv_std = torch.exp(-log_scale)
    upper = approx_standard_normal_cdf(inv_std * (x - mean + BIN_HALF_WIDTH))
    lower = approx_standard_normal_cdf(inv_std * (x - mean - BIN_HALF_WIDTH))
    log_below_upper = upper.clamp(min=1e-12).log()
    log_above_lower = (1.0 - lower).clamp(min=1e-12).log()
    log_in_bin = (upper - lower).clamp(min=1e-12).log()
    return torch.where(x < -0.999, log_below_upper, torch.where(x > 0.999, log_above_lower, log_in_bin))


def mean_over_dims(values: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,)."""
    return values.flatten(1).mean(1)
