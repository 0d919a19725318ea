"""Classifier-free guidance on the first ``guided_channels`` output channels.

Fact (DiT ``models.py`` ``forward_with_cfg``): ``eps, rest = model_out[:, :3], model_out[:, 3:]``;
the first 3 channels become ``uncond + s (cond - uncond)`` and ``rest`` (the 4th latent
channel and the 4 learned-sigma channels) is concatenated back per half of the batch, so the
kept conditional samples (``sample_ddp.py`` drops the null half) see the CONDITIONAL values
there. The official DiT quirk "for exact reproducibility" is ``guided_channels=3``; MaskDiT
(``models/maskdit.py``) guides all ``in_channels`` (None).
"""
from __future__ import annotations

import pytest
import torch

from mdreg.diffusion.model_fn import EpsModel, guided
from mdreg.registry import NOISE_SCHEDULES, OBJECTIVES


class LabelledLearnedSigma(torch.nn.Module):
    """Output channel k is (k + 1) * (y + 1) + x_0: distinct values per channel and label; 2C channels."""

    null_label = 9

    def forward(self, x, t, y=None, ids_keep=None):
        k = torch.arange(2 * x.shape[1], dtype=x.dtype).view(1, -1, 1, 1)
        return (k + 1) * (y.view(-1, 1, 1, 1).to(x.dtype) + 1) + x[:, :1]


def outputs(y, x):
    return LabelledLearnedSigma()(x, None, y)


@pytest.mark.parametrize("guided_channels,expect_guided", [(3, 3), (None, 4)])
def test_first_channels_guided_the_rest_conditional(guided_channels, expect_guided):
    x, y, s = torch.randn(2, 4, 3, 3), torch.tensor([1, 4]), 1.5
    fn = EpsModel(LabelledLearnedSigma(), NOISE_SCHEDULES.get("ddpm_linear")(), y, s, guided_channels)
    c, u = outputs(y, x), outputs(torch.full_like(y, 9), x)
    want = c.clone()
    want[:, :expect_guided] = u[:, :expect_guided] + s * (c[:, :expect_guided] - u[:, :expect_guided])
    eps, v = fn.eps_and_variance(x, torch.tensor([10, 10]))
    assert torch.allclose(eps, want[:, :4]) and torch.allclose(v, c[:, 4:])  # variance: conditional, unguided
    assert torch.allclose(fn(x, torch.tensor([10, 10])), want[:, :4])
    if guided_channels == 3:  # channel 3 would change under guidance: it is really left conditional
        assert torch.allclose(eps[:, 3], c[:, 3]) and not torch.allclose(c[:, 3], u[:, 3] + s * (c[:, 3] - u[:, 3]))


def test_objectives_carry_the_option_to_their_model_fn():
    dit = OBJECTIVES.get("iddpm_hybrid")(schedule=NOISE_SCHEDULES.get("ddpm_linear")(), guided_channels=3)
    assert dit.model_fn(LabelledLearnedSigma(), torch.tensor([1]), 1.5).guided_channels == 3
    assert OBJECTIVES.get("dsm")(schedule=NOISE_SCHEDULES.get("ddpm_linear")()).guided_channels is None
    assert OBJECTIVES.get("maskdit")().model_fn(LabelledLearnedSigma()).guided_channels is None


def test_no_guidance_at_scale_one_and_bad_values():
    x, y = torch.randn(1, 4, 2, 2), torch.tensor([2])
    plain = guided(lambda x_, t_, y_: outputs(y_, x_), x, torch.zeros(1), y, 1.0, 9, 3)
    assert torch.equal(plain, outputs(y, x))
    with pytest.raises(ValueError, match="guided_channels"):
        OBJECTIVES.get("dsm")(schedule=NOISE_SCHEDULES.get("ddpm_linear")(), guided_channels=0)
    with pytest.raises(ValueError, match="guided_channels=5 but the data has 4 channels"):
        guided(lambda x_, t_, y_: outputs(y_, x_), x, torch.zeros(1), y, 1.5, 9, 5)
