"""The improved-DDPM hybrid loss with a learned variance (objective ``iddpm_hybrid``, DiT's training loss).

Expected values are computed here independently of mdreg's code: the schedule from linear
betas written out, the posterior from Ho et al. eqs. 6-7, the KL with
``torch.distributions.kl_divergence`` and the decoder likelihood from ``Normal(...).cdf``.
Facts followed (DiT ``diffusion/gaussian_diffusion.py``): ``_vb_terms_bpd`` (KL for t > 0,
decoder NLL at t = 0, mean over dimensions / ln 2), ``training_losses`` (``mse + vb``, the
VLB term on ``model_output.detach()``, no rescaling under ``LossType.MSE``), ``p_mean_variance``
(``frac = (v + 1) / 2`` between ``posterior_log_variance_clipped`` and ``log(betas)``).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mdreg.diffusion.vlb import approx_standard_normal_cdf, discretized_gaussian_log_likelihood
from mdreg.registry import NOISE_SCHEDULES, OBJECTIVES

BETAS = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
ABAR = torch.cumprod(1 - BETAS, 0)
ABAR_PREV = torch.cat([torch.ones(1, dtype=torch.float64), ABAR[:-1]])
POST_VAR = BETAS * (1 - ABAR_PREV) / (1 - ABAR)


def hybrid(**kw):
    return OBJECTIVES.get("iddpm_hybrid")(schedule=NOISE_SCHEDULES.get("ddpm_linear")(), **kw)


def column(values, t):
    return values[t].view(-1, 1, 1, 1)


def posterior(x0, x_t, t):
    """Mean and variance of q(x_{t-1} | x_t, x0) (Ho et al. eqs. 6-7)."""
    mean = (column(ABAR_PREV, t).sqrt() * column(BETAS, t) / (1 - column(ABAR, t)) * x0
            + (1 - column(BETAS, t)).sqrt() * (1 - column(ABAR_PREV, t)) / (1 - column(ABAR, t)) * x_t)
    return mean, column(POST_VAR, t)


def model_variance(v, t):
    """exp(f log beta_t + (1 - f) log beta~_t), f = (v + 1) / 2, beta~_0 replaced by beta~_1 (clipped log)."""
    post = torch.where(t == 0, POST_VAR[1], POST_VAR[t]).view(-1, 1, 1, 1)
    f = (v + 1) / 2
    return torch.exp(f * column(BETAS, t).log() + (1 - f) * post.log())


def exact_decoder_log_likelihood(x0, mean, std):
    """log P(bin of x0) under N(mean, std^2), bins of half width 1/255, open-ended beyond +-0.999."""
    normal = Normal(mean, std)
    upper, lower = normal.cdf(x0 + 1 / 255), normal.cdf(x0 - 1 / 255)
    prob = torch.where(x0 < -0.999, upper, torch.where(x0 > 0.999, 1 - lower, upper - lower))
    return prob.log()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(4, 3, 4, 4, generator=g, dtype=torch.float64) * 1.9 - 0.95)
    x0[0, 0, 0, :2] = torch.tensor([-1.0, 1.0], dtype=torch.float64)  # the two open-ended bins
    eps = torch.randn(4, 3, 4, 4, generator=g, dtype=torch.float64)
    v = torch.rand(4, 3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(4, 3, 4, 4, generator=g, dtype=torch.float64)
    return x0, eps, v, noise


def test_vlb_term_is_the_kl_for_t_above_0_and_the_decoder_nll_at_0():
    x0, eps_hat, v, noise = inputs()
    t = torch.tensor([0, 1, 500, 999])
    eps_hat[0] = noise[0] + 0.5 * eps_hat[0]  # a decoder mean within ~sigma of x0: bins of moderate mass
    x_t = column(ABAR, t).sqrt() * x0 + (1 - column(ABAR, t)).sqrt() * noise
    got = hybrid().vlb_bits_per_dim(x0.float(), x_t.float(), t, eps_hat.float(), v.float()).double()

    x0_hat = (x_t - (1 - column(ABAR, t)).sqrt() * eps_hat) / column(ABAR, t).sqrt()
    true_mean, true_var = posterior(x0, x_t, t)
    true_var = torch.where(t == 0, POST_VAR[1], POST_VAR[t]).view(-1, 1, 1, 1).expand_as(x0)  # clipped at t = 0
    model_mean, _ = posterior(x0_hat, x_t, t)
    model_std = model_variance(v, t).sqrt()
    kl = kl_divergence(Normal(true_mean, true_var.sqrt()), Normal(model_mean, model_std)).flatten(1).mean(1)
    nll = -exact_decoder_log_likelihood(x0, model_mean, model_std).flatten(1).mean(1)
    assert torch.allclose(got[1:], kl[1:] / math.log(2), rtol=2e-4, atol=1e-5)
    # t = 0: DiT's tanh approximation of the normal CDF (within 2e-4 of Phi) against the exact CDF
    assert got[0].item() == pytest.approx(nll[0].item() / math.log(2), rel=1e-3)


def test_decoder_likelihood_uses_the_tanh_cdf_of_the_official_code():
    """Official quirk (DiT ``diffusion/diffusion_utils.py`` ``approx_standard_normal_cdf``): the
    decoder likelihood uses 0.5 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), not the exact CDF."""
    z = torch.linspace(-4, 4, 81, dtype=torch.float64)
    tanh_cdf = 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
    assert torch.equal(approx_standard_normal_cdf(z), tanh_cdf)
    assert 5e-5 < (tanh_cdf - Normal(0.0, 1.0).cdf(z)).abs().max() < 2e-4
    x, mean = torch.tensor([0.2, -1.0, 1.0]), torch.tensor([0.21, -0.9, 0.95])
    log_scale = torch.tensor([-4.0, -3.0, -3.0])
    cdf = lambda u: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))  # noqa: E731
    inv = torch.exp(-log_scale)
    want = torch.stack([(cdf(inv[0] * (x[0] - mean[0] + 1 / 255)) - cdf(inv[0] * (x[0] - mean[0] - 1 / 255))).log(),
                        cdf(inv[1] * (x[1] - mean[1] + 1 / 255)).log(),
                        (1 - cdf(inv[2] * (x[2] - mean[2] - 1 / 255))).log()])
    assert torch.allclose(discretized_gaussian_log_likelihood(x, mean, log_scale), want, atol=1e-6)


class FixedOutput(torch.nn.Module):
    """A learned-sigma 'network' whose output [eps | v] is a parameter."""

    patch_size = 2

    def __init__(self, out):
        super().__init__()
        self.out = torch.nn.Parameter(out)

    def forward(self, x, t, y=None, ids_keep=None):
        return self.out * 1.0


def test_loss_is_the_batch_mean_of_mse_plus_vlb_from_the_same_draws():
    x0, eps_hat, v, _ = inputs(1)
    net = FixedOutput(torch.cat([eps_hat, v], 1).float())
    out = hybrid()(net, x0.float(), generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)  # the objective draws t, then the noise
    t = torch.randint(0, 1000, (4,), generator=g)
    noise = torch.randn(4, 3, 4, 4, generator=g)
    x_t = (column(ABAR, t).sqrt() * x0 + (1 - column(ABAR, t)).sqrt() * noise).float()
    mse = ((noise - eps_hat.float()) ** 2).flatten(1).mean(1)
    vlb = hybrid().vlb_bits_per_dim(x0.float(), x_t, t, eps_hat.float(), v.float())
    assert out.loss.item() == pytest.approx((mse + vlb).mean().item(), rel=1e-5)
    assert out.metrics["mse"].item() == pytest.approx(mse.mean().item(), rel=1e-5)
    weighted = hybrid(vlb_weight=0.5)(net, x0.float(), generator=torch.Generator().manual_seed(9)).loss
    assert weighted.item() == pytest.approx((mse + 0.5 * vlb).mean().item(), rel=1e-5)


def test_vlb_trains_only_the_variance_the_mean_head_gets_the_mse_gradient_alone():
    x0, eps_hat, v, _ = inputs(2)
    grads = {}
    for weight in (0.0, 1.0):
        net = FixedOutput(torch.cat([eps_hat, v], 1).float())
        hybrid(vlb_weight=weight)(net, x0.float(), generator=torch.Generator().manual_seed(4)).loss.backward()
        grads[weight] = net.out.grad
    assert torch.equal(grads[1.0][:, :3], grads[0.0][:, :3])  # stop-gradient: L_vlb adds nothing to eps
    assert torch.all(grads[0.0][:, 3:] == 0) and grads[1.0][:, 3:].abs().sum() > 0


def test_refuses_networks_without_variance_channels_and_masks():
    with pytest.raises(ValueError, match="learn_sigma=True"):
        hybrid()(FixedOutput(torch.zeros(2, 3, 4, 4)), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="use masker 'none'"):
        hybrid()(FixedOutput(torch.zeros(2, 6, 4, 4)), torch.zeros(2, 3, 4, 4), ids_keep=torch.zeros(2, 2).long())
    with pytest.raises(ValueError, match="vlb_weight"):
        hybrid(vlb_weight=-1.0)
    with pytest.raises(ValueError, match="discrete DDPM noise schedule"):
        OBJECTIVES.get("dit_hybrid")(schedule=NOISE_SCHEDULES.get("edm")())
