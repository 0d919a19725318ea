"""DDIM with x0 clipping: which epsilon enters the update (``eps_after_clip``).

Facts (official-code notes, "Corrections and additions"): maskdm (``gaussian_ddpm.py``
``model_predictions`` / ``ddim_sample``) clips x0 to [-1, 1] but steps with the network's raw
epsilon; ADM / DiT (``diffusion/gaussian_diffusion.py`` ``ddim_sample``) re-derive epsilon
from the clipped x0. The expected states below are written from DDIM eq. 12 and those facts.
"""
from __future__ import annotations

import math

import pytest
import torch

from mdreg.diffusion.samplers import DDIM
from mdreg.diffusion.schedules import DDPMLinear

ABAR = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)


class FixedEps:
    """Predicts a fixed epsilon and records every state it is called on."""

    kind = "discrete"

    def __init__(self, eps):
        self.schedule, self.eps, self.seen = DDPMLinear(), eps, []

    def __call__(self, x, t):
        self.seen.append((x.clone(), int(t[0])))
        return self.eps.expand_as(x)


def first_transition(eps_after_clip, eta, seed=3):
    """Run DDIM-2 (timesteps 999 -> 499 -> clean) and return (x_T, the state at 499, the noise z of step 1)."""
    model = FixedEps(torch.tensor([-3.0, 0.5, 2.5, 0.0]).view(1, 4, 1, 1))  # large |eps|: x0 leaves [-1, 1]
    sampler = DDIM(steps=2, eta=eta, eps_after_clip=eps_after_clip)
    sampler.sample(model, (2, 4, 1, 1), torch.Generator().manual_seed(seed))
    (x_T, t), (x_mid, t_mid) = model.seen
    assert (t, t_mid) == (999, 499)
    g = torch.Generator().manual_seed(seed)
    assert torch.equal(x_T, torch.randn(2, 4, 1, 1, generator=g))  # the sampler's first draw
    return x_T, x_mid, torch.randn(2, 4, 1, 1, generator=g), model.eps


def expected(x, eps, z, eta, rederive):
    a, a_prev = float(ABAR[999]), float(ABAR[499])
    x0 = ((x - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
    assert (x0.abs() == 1).any()  # the clipping is active
    if rederive:
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a)) * math.sqrt(1 - a / a_prev)
    return math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - sigma ** 2) * eps + sigma * z


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("convention", ["rederive", "raw"])
def test_ddim_update_in_both_conventions(convention, eta):
    x_T, x_mid, z, eps = first_transition(convention, eta)
    want = expected(x_T, eps, z, eta, rederive=convention == "rederive")
    assert torch.allclose(x_mid, want.float(), atol=1e-5)


def test_conventions_differ_only_when_clipping_acts():
    _, raw, _, _ = first_transition("raw", 1.0)
    _, rederived, _, _ = first_transition("rederive", 1.0)
    assert (raw - rederived).abs().max() > 0.05
    unclipped = [DDIM(steps=2, eta=1.0, clip=None, eps_after_clip=c) for c in ("raw", "rederive")]
    outs = [s.sample(FixedEps(torch.full((1, 4, 1, 1), 0.1)), (2, 4, 1, 1), torch.Generator().manual_seed(0))
            for s in unclipped]
    assert torch.equal(outs[0], outs[1])


def test_default_is_rederive_and_bad_value_is_refused():
    assert DDIM().eps_after_clip == "rederive"
    with pytest.raises(ValueError, match="eps_after_clip must be 'rederive'.*or 'raw'"):
        DDIM(eps_after_clip="clipped")
