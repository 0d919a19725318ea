"""Samplers with the exact denoiser of Gaussian data reproduce its mean and covariance.

Data: x0 ~ N(mu, Sigma) in 4 dimensions (shaped 1x2x2), Sigma's eigenvalues 0.02 .. 0.39.
For this data the optimal denoisers are closed-form:

* discrete VP process: E[x0 | x_t] = mu + sqrt(a) Sigma (a Sigma + (1 - a) I)^-1 (x_t - sqrt(a) mu),
  a = alpha-bar_t, and eps = (x_t - sqrt(a) E[x0 | x_t]) / sqrt(1 - a);
* EDM: D(x, sigma) = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu).

Tolerance, for n = 8000 samples: the largest variance is 0.27, so each sample-mean entry has
standard error sqrt(0.27 / n) = 0.0058 and each sample-covariance entry at most
sqrt(2 * 0.27^2 / n) = 0.0043. We allow 0.03 on every mean and covariance entry: five
standard errors (0.029 / 0.021), which also leaves room for the samplers' discretisation
bias at the step counts used (measured below 0.016 with 16000 samples over 4 seeds:
DDPM-250, DDIM-100, EDM-Heun-40, EDM-Euler-100). A wrong sign, a missing sqrt or a
misplaced noise term moves the covariance by far more than 0.03.
"""
from __future__ import annotations

import pytest
import torch

from mdreg.registry import NOISE_SCHEDULES, SAMPLERS

MU = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64)
A = torch.tensor([[0.5, 0.1, 0, 0], [0.2, 0.3, 0.1, 0], [0, 0.1, 0.4, 0.2], [0.1, 0, 0.1, 0.2]], dtype=torch.float64)
COV = A @ A.T + 0.01 * torch.eye(4, dtype=torch.float64)
N, TOL = 8000, 0.03
EYE = torch.eye(4, dtype=torch.float64)


class GaussianEps:
    """Exact epsilon-prediction for the discrete process (what ``objective.model_fn`` gives samplers)."""

    kind = "discrete"

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, x, t):
        a = torch.tensor(self.schedule.abar_at(int(t[0])), dtype=torch.float64)
        flat = x.double().reshape(x.shape[0], -1)
        gain = a.sqrt() * COV @ torch.linalg.inv(a * COV + (1 - a) * EYE)
        x0 = MU + (flat - a.sqrt() * MU) @ gain.T
        return ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape).float()


class GaussianDenoiser:
    """Exact EDM denoiser D(x, sigma)."""

    kind = "edm"

    def __init__(self):
        self.schedule = NOISE_SCHEDULES.get("edm")()

    def __call__(self, x, sigma):
        s2 = float(sigma[0]) ** 2
        flat = x.double().reshape(x.shape[0], -1)
        gain = COV @ torch.linalg.inv(COV + s2 * EYE)
        return (MU + (flat - MU) @ gain.T).reshape(x.shape).float()


CASES = {
    "ddpm-250": ("ddpm", dict(steps=250, clip=None), lambda: GaussianEps(NOISE_SCHEDULES.get("ddpm_linear")())),
    "ddpm-250-large": ("ddpm", dict(steps=250, clip=None, variance="large"),  # measured within 0.009
                       lambda: GaussianEps(NOISE_SCHEDULES.get("ddpm_linear")())),
    "ddim-100": ("ddim", dict(steps=100, eta=0.0, clip=None),
                 lambda: GaussianEps(NOISE_SCHEDULES.get("ddpm_linear")())),
    "edm_heun-40": ("edm_heun", dict(steps=40), GaussianDenoiser),
    "edm_euler-100": ("edm_euler", dict(steps=100), GaussianDenoiser),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sampler_matches_gaussian_mean_and_covariance(case):
    name, kwargs, model_fn = CASES[case]
    x = SAMPLERS.get(name)(**kwargs).sample(model_fn(), (N, 1, 2, 2), torch.Generator().manual_seed(1))
    flat = x.double().reshape(N, -1)
    assert (flat.mean(0) - MU).abs().max() < TOL
    assert (torch.cov(flat.T) - COV).abs().max() < TOL


def test_ddpm_large_variance_and_seeded_batches():
    sampler = SAMPLERS.get("ddpm")(steps=50, clip=None, variance="large")
    fn = GaussianEps(NOISE_SCHEDULES.get("ddpm_cosine")())
    a = sampler.sample(fn, (16, 1, 2, 2), torch.Generator().manual_seed(5))
    b = sampler.sample(fn, (16, 1, 2, 2), torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (16, 1, 2, 2) and torch.isfinite(a).all()
    small = SAMPLERS.get("ddpm")(steps=50, clip=None).sample(fn, (16, 1, 2, 2), torch.Generator().manual_seed(5))
    assert not torch.allclose(a, small)  # same noise, other variance: beta > beta~ at every step


def test_family_mismatch_is_refused():
    with pytest.raises(ValueError, match="pick a sampler of the objective's family"):
        SAMPLERS.get("edm_heun")().sample(GaussianEps(NOISE_SCHEDULES.get("ddpm_linear")()), (2, 1, 2, 2))
    with pytest.raises(ValueError, match="pick a sampler of the objective's family"):
        SAMPLERS.get("ddpm")().sample(GaussianDenoiser(), (2, 1, 2, 2))
