"""EDM schedule and preconditioning (Karras et al. 2022, Table 1 and eq. 5)."""
from __future__ import annotations

import math

import pytest
import torch

from mdreg.diffusion.preconditioning import EDMDenoiser, EDMPreconditioning
from mdreg.registry import NOISE_SCHEDULES


def test_sampling_sigmas_follow_karras_eq5():
    schedule = NOISE_SCHEDULES.get("edm")()
    sigmas = schedule.sampling_sigmas(40)
    assert sigmas.dtype == torch.float64 and sigmas.shape == (41,)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[39] == pytest.approx(0.002) and sigmas[40] == 0
    i = 17
    expected = (80 ** (1 / 7) + i / 39 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert float(sigmas[i]) == pytest.approx(expected)
    assert bool((sigmas[:-1] > sigmas[1:]).all())


def test_training_sigmas_are_lognormal_and_seeded():
    schedule = NOISE_SCHEDULES.get("edm")()
    log_sigma = schedule.sample_sigma(20000, torch.Generator().manual_seed(0)).log()
    assert float(log_sigma.mean()) == pytest.approx(-1.2, abs=0.03)
    assert float(log_sigma.std()) == pytest.approx(1.2, abs=0.03)
    assert torch.equal(schedule.sample_sigma(4, torch.Generator().manual_seed(1)),
                       schedule.sample_sigma(4, torch.Generator().manual_seed(1)))


def test_loss_weight_and_coefficients():
    schedule = NOISE_SCHEDULES.get("edm")()
    sigma = torch.tensor([0.5, 2.0])
    assert torch.allclose(schedule.loss_weight(sigma), (sigma ** 2 + 0.25) / (0.5 * sigma) ** 2)
    pre = EDMPreconditioning(0.5)
    s = torch.tensor(0.5)  # sigma = sigma_data: c_skip = 1/2, c_out = sd/sqrt(2), c_in = 1/(sd sqrt(2))
    assert float(pre.c_skip(s)) == pytest.approx(0.5)
    assert float(pre.c_out(s)) == pytest.approx(0.5 / math.sqrt(2))
    assert float(pre.c_in(s)) == pytest.approx(1 / (0.5 * math.sqrt(2)))
    assert float(pre.c_noise(s)) == pytest.approx(math.log(0.5) / 4)
    s = torch.logspace(-3, 2, 11)  # unit-variance training target: c_out^2 * weight = 1 (Karras eq. 8)
    assert torch.allclose(pre.c_out(s) ** 2 * schedule.loss_weight(s), torch.ones(11))


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_coefficients_are_karras_table_1_at_every_noise_level(sigma_data):
    """Karras et al. 2022, Table 1 ("Ours"), written out: c_skip = sd^2 / (s^2 + sd^2),
    c_out = s sd / sqrt(s^2 + sd^2), c_in = 1 / sqrt(s^2 + sd^2), c_noise = ln(s) / 4."""
    pre, sd = EDMPreconditioning(sigma_data), sigma_data
    for s in [0.002, 0.03, 0.2, sd, 1.7, 11.0, 80.0]:
        sigma = torch.tensor(s, dtype=torch.float64)
        assert float(pre.c_skip(sigma)) == pytest.approx(sd ** 2 / (s ** 2 + sd ** 2), rel=1e-9)
        assert float(pre.c_out(sigma)) == pytest.approx(s * sd / math.sqrt(s ** 2 + sd ** 2), rel=1e-9)
        assert float(pre.c_in(sigma)) == pytest.approx(1 / math.sqrt(s ** 2 + sd ** 2), rel=1e-9)
        assert float(pre.c_noise(sigma)) == pytest.approx(math.log(s) / 4, rel=1e-9)


class Recorder(torch.nn.Module):
    """A 'network' returning a fixed F and remembering its inputs; learned-sigma channels appended."""

    null_label = 3

    def forward(self, x, t, y=None, ids_keep=None):
        self.seen = (x.clone(), t.clone(), y)
        return torch.cat([torch.full_like(x, 2.0), torch.full_like(x, 99.0)], dim=1)


def test_denoiser_wraps_the_network_with_the_coefficients():
    net, pre = Recorder(), EDMPreconditioning(0.5)
    x, sigma = torch.randn(2, 3, 4, 4), torch.tensor([0.1, 10.0])
    out = pre.denoise(net, x, sigma)
    col = sigma.view(-1, 1, 1, 1)
    norm = (col ** 2 + 0.25).sqrt()  # Karras eq. 7 with Table 1's coefficients, written out
    assert torch.allclose(net.seen[0], x / norm)
    assert torch.allclose(net.seen[1], sigma.log() / 4)
    assert torch.allclose(out, 0.25 / norm ** 2 * x + col * 0.5 / norm * 2.0)  # extra channels ignored


def test_guidance_mixes_conditional_and_null_denoisers():
    class Labelled(torch.nn.Module):
        null_label = 3

        def forward(self, x, t, y=None, ids_keep=None):
            return x * 0 + y.view(-1, 1, 1, 1).float()

    schedule = NOISE_SCHEDULES.get("edm")()
    x, sigma = torch.randn(2, 1, 2, 2), torch.tensor([1.0, 1.0])
    plain = EDMDenoiser(Labelled(), schedule, y=torch.tensor([1, 2]))(x, sigma)
    guided = EDMDenoiser(Labelled(), schedule, y=torch.tensor([1, 2]), guidance_scale=1.5)(x, sigma)
    null = EDMDenoiser(Labelled(), schedule, y=torch.tensor([3, 3]))(x, sigma)
    assert torch.allclose(guided, null + 1.5 * (plain - null))


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        NOISE_SCHEDULES.get("edm")(sigma_min=1.0, sigma_max=0.5)
