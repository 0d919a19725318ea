"""DDPM schedules, DSM/MDSM objectives (MaskDM eqs. 1 and 4) and the DDIM sampler."""
import math

import pytest
import torch

from mdreg.diffusion.objectives import DSM, MDSM
from mdreg.diffusion.samplers import DDIM, timestep_pairs
from mdreg.diffusion.schedules import DDPMCosine, DDPMLinear
from mdreg.masking import PatchMasker, visible_ids
from mdreg.models.layers import patchify


def test_linear_schedule_values():
    s = DDPMLinear()
    assert s.num_timesteps == 1000
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert s.alphas_cumprod[-1].item() == pytest.approx(4.04e-5, rel=0.01)


def test_cosine_schedule_follows_nichol_dhariwal():
    s = DDPMCosine()
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 100, 500, 900):
        assert s.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-6)
    assert s.betas.max().item() <= 0.999


class Recorder(torch.nn.Module):
    """A 'network' whose prediction we control, to test what the loss looks at."""

    patch_size = 2

    def __init__(self, out):
        super().__init__()
        self.out = torch.nn.Parameter(out)

    def forward(self, x, t, y=None, ids_keep=None):
        return self.out


def test_mdsm_only_sees_visible_patches():
    torch.manual_seed(0)
    x0 = torch.randn(2, 3, 8, 8)
    mask = PatchMasker(0.5)(2, (4, 4), torch.Generator().manual_seed(0))
    ids = visible_ids(mask)
    net = Recorder(torch.randn(2, 3, 8, 8))
    out = MDSM(DDPMLinear())(net, x0, ids_keep=ids, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    grad = patchify(net.out.grad, 2)  # (B, N, 12)
    assert torch.all(grad[mask] == 0) and torch.all(grad[~mask] != 0)


def test_mdsm_equals_dsm_without_mask_and_dsm_refuses_masks():
    x0 = torch.randn(2, 3, 8, 8)
    net = Recorder(torch.zeros(2, 3, 8, 8))
    a = DSM(DDPMLinear())(net, x0, generator=torch.Generator().manual_seed(1)).loss
    b = MDSM(DDPMLinear())(net, x0, generator=torch.Generator().manual_seed(1)).loss
    assert a.item() == pytest.approx(b.item())
    assert a.item() == pytest.approx(1.0, abs=0.15)  # zero prediction: E[eps^2] = 1
    ids = torch.arange(8).expand(2, 8)
    with pytest.raises(ValueError, match="use objective 'mdsm'"):
        DSM(DDPMLinear())(net, x0, ids_keep=ids)


class GaussianEps:
    """Exact epsilon of N(mu, sd^2) data under a discrete VP schedule:
    eps*(x_t) = sqrt(1-a) (x_t - sqrt(a) mu) / (a sd^2 + 1 - a)."""

    kind = "discrete"

    def __init__(self, schedule, mu, sd):
        self.schedule, self.mu, self.sd = schedule, mu, sd

    def __call__(self, x, t):
        a = self.schedule.abar(t, x)
        return (1 - a).sqrt() * (x - a.sqrt() * self.mu) / (a * self.sd ** 2 + 1 - a)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_the_exact_denoiser_recovers_the_data_distribution(eta):
    """With 250 steps the discretisation error of the std is ~3% (measured: 0.194-0.198 for
    sd 0.2); 20k samples give a standard error of 0.0014 on the mean."""
    model = GaussianEps(DDPMCosine(), mu=0.3, sd=0.2)
    x = DDIM(steps=250, eta=eta, clip=None).sample(model, (20000, 1), torch.Generator().manual_seed(0))
    assert x.mean().item() == pytest.approx(0.3, abs=0.01)
    assert x.std().item() == pytest.approx(0.2, rel=0.06)


def test_ddim_clips_x0_and_is_seeded():
    model = GaussianEps(DDPMLinear(), mu=3.0, sd=0.1)  # data outside [-1, 1]
    a = DDIM(steps=20, eta=1.0).sample(model, (64, 1), torch.Generator().manual_seed(0))
    b = DDIM(steps=20, eta=1.0).sample(model, (64, 1), torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.max().item() <= 1.0 + 1e-6


def test_timestep_pairs_end_at_the_clean_image():
    pairs = timestep_pairs(1000, 50, "linspace")
    assert len(pairs) == 50 and pairs[0][0] == 999 and pairs[-1][1] == -1
    assert timestep_pairs(1000, 50, "uniform")[0] == (980, 960)
    with pytest.raises(ValueError):
        timestep_pairs(1000, 0, "linspace")


class InputRecorder(torch.nn.Module):
    """Predicts a fixed epsilon and remembers the noisy input and timestep it was given."""

    def __init__(self, prediction):
        super().__init__()
        self.prediction = prediction

    def forward(self, x, t, y=None, ids_keep=None):
        self.seen = (x.detach().clone(), t.detach().clone())
        return self.prediction


def test_dsm_noises_x0_by_q_xt_given_x0_and_regresses_that_noise():
    """MaskDM eq. 1 / Ho et al. eq. 4: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with
    abar_t = prod_{s<=t} (1 - beta_s), betas linear from 1e-4 to 0.02 (written out here), and
    the loss is the mean squared error to that same eps."""
    x0 = torch.rand(3, 3, 8, 8) * 2 - 1
    prediction = torch.randn(3, 3, 8, 8)
    net = InputRecorder(prediction)
    loss = DSM(DDPMLinear())(net, x0, generator=torch.Generator().manual_seed(5)).loss
    g = torch.Generator().manual_seed(5)  # the objective draws t, then eps, from its generator
    t = torch.randint(0, 1000, (3,), generator=g)
    eps = torch.randn(3, 3, 8, 8, generator=g)
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[t].view(-1, 1, 1, 1)
    expected = (abar.sqrt() * x0 + (1 - abar).sqrt() * eps).float()
    seen_x, seen_t = net.seen
    assert torch.equal(seen_t, t.float()) and torch.allclose(seen_x, expected, atol=1e-6)
    assert loss.item() == pytest.approx(float(((prediction - eps) ** 2).mean()), rel=1e-6)
