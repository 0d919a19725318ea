"""``sampler:ddpm_learned``: ancestral sampling with the network's learned variance on a respaced chain.

Facts followed (DiT): ``diffusion/respace.py`` ``space_timesteps(1000, "250")`` keeps
round(i * 999 / 249) and ``SpacedDiffusion`` gives kept step i the beta
1 - abar(t_i) / abar(t_{i-1}), calling the network at the original t_i;
``gaussian_diffusion.py`` ``p_mean_variance`` (LEARNED_RANGE) and ``p_sample`` (no noise at
the last step). Expected values are written from those facts, not from mdreg's code.
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from mdreg.diffusion.samplers import iddpm_timesteps, timestep_pairs
from mdreg.registry import NOISE_SCHEDULES, SAMPLERS

ABAR = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)


def test_iddpm_spacing_is_dits_250_step_respacing():
    kept = iddpm_timesteps(1000, 250)
    assert kept == [round(Fraction(999 * i, 249)) for i in range(250)]
    assert kept[:4] == [0, 4, 8, 12] and kept[-1] == 999 and len(set(kept)) == 250
    pairs = timestep_pairs(1000, 250, "iddpm")
    assert pairs[0] == (999, kept[-2]) and pairs[-1] == (0, -1)


def test_respaced_chain_betas():
    kept = iddpm_timesteps(1000, 25)
    chain = NOISE_SCHEDULES.get("ddpm_linear")().respaced(kept)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ABAR[kept][:-1]])
    assert torch.allclose(chain.betas, 1 - ABAR[kept] / prev, rtol=1e-12)
    assert chain.timestep_map == kept
    with pytest.raises(ValueError, match="ascending"):
        NOISE_SCHEDULES.get("ddpm_linear")().respaced([5, 3])


class FixedEpsVar:
    """Fixed (eps, v) outputs; records the states and timesteps it is called with."""

    kind = "discrete"

    def __init__(self, eps, v):
        self.schedule, self.eps, self.v, self.seen = NOISE_SCHEDULES.get("ddpm_linear")(), eps, v, []

    def __call__(self, x, t):
        return self.eps_and_variance(x, t)[0]

    def eps_and_variance(self, x, t):
        self.seen.append((x.clone(), t.clone()))
        return self.eps.expand_as(x), self.v.expand_as(x)


def test_each_step_draws_from_the_posterior_mean_with_the_learned_variance():
    kept = iddpm_timesteps(1000, 3)  # [0, 500, 999]
    model = FixedEpsVar(torch.tensor([0.3, -0.2]).view(1, 2, 1, 1), torch.tensor([-0.5, 0.8]).view(1, 2, 1, 1))
    out = SAMPLERS.get("ddpm_learned")(steps=3).sample(model, (3, 2, 1, 1), torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 2, 1, 1, generator=g).double()
    a = ABAR[kept]
    a_prev = torch.cat([torch.ones(1, dtype=torch.float64), a[:-1]])
    beta = 1 - a / a_prev
    post_var = beta * (1 - a_prev) / (1 - a)
    for i in (2, 1, 0):
        seen_x, seen_t = model.seen[2 - i]
        assert torch.equal(seen_t, torch.full((3,), kept[i])) and torch.allclose(seen_x.double(), x, atol=1e-5)
        eps, v = model.eps.double(), model.v.double()
        x0 = (x - (1 - a[i]).sqrt() * eps) / a[i].sqrt()  # no clipping (DiT: clip_denoised=False)
        mean = a_prev[i].sqrt() * beta[i] / (1 - a[i]) * x0 + (1 - beta[i]).sqrt() * (1 - a_prev[i]) / (1 - a[i]) * x
        if i == 0:
            assert torch.allclose(out.double(), mean, atol=1e-5) and torch.allclose(mean, x0)
            break
        f = (v + 1) / 2
        variance = torch.exp(f * beta[i].log() + (1 - f) * post_var[i].log())
        x = mean + variance.sqrt() * torch.randn(3, 2, 1, 1, generator=g).double()


MU = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64)
A = torch.tensor([[0.5, 0.1, 0, 0], [0.2, 0.3, 0.1, 0], [0, 0.1, 0.4, 0.2], [0.1, 0, 0.1, 0.2]], dtype=torch.float64)
COV = A @ A.T + 0.01 * torch.eye(4, dtype=torch.float64)


class GaussianEpsVar(FixedEpsVar):
    """The exact epsilon of N(MU, COV) data (see test_samplers_gaussian.py) and a constant v."""

    def __init__(self, v):
        super().__init__(None, v)

    def eps_and_variance(self, x, t):
        a = ABAR[int(t[0])]
        flat = x.double().reshape(x.shape[0], -1)
        gain = a.sqrt() * COV @ torch.linalg.inv(a * COV + (1 - a) * torch.eye(4, dtype=torch.float64))
        x0 = MU + (flat - a.sqrt() * MU) @ gain.T
        eps = ((flat - a.sqrt() * x0) / (1 - a).sqrt()).reshape(x.shape).float()
        return eps, torch.full_like(eps, self.v)


@pytest.mark.parametrize("v", [-1.0, 0.0])
def test_respaced_250_steps_reproduce_gaussian_data(v):
    """Tolerance as test_samplers_gaussian.py: 0.03 on every mean / covariance entry (8000 samples).
    v = -1 is the posterior variance beta~, v = 0 the geometric mean of beta~ and beta."""
    x = SAMPLERS.get("ddpm_learned")(steps=250).sample(GaussianEpsVar(v), (8000, 1, 2, 2),
                                                        torch.Generator().manual_seed(1))
    flat = x.double().reshape(8000, -1)
    assert (flat.mean(0) - MU).abs().max() < 0.03
    assert (torch.cov(flat.T) - COV).abs().max() < 0.03


def test_needs_variance_values():
    class EpsOnly:
        kind = "discrete"
        schedule = NOISE_SCHEDULES.get("ddpm_linear")()

        def __call__(self, x, t):
            return x

    with pytest.raises(ValueError, match="eps_and_variance"):
        SAMPLERS.get("ddpm_learned")(steps=2).sample(EpsOnly(), (1, 1, 1, 1))
    assert math.isclose(SAMPLERS.get("learned_variance")().steps, 250)
