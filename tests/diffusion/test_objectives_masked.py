"""Masked objectives: MDSM (MaskDM eq. 4) and MaskDiT's DSM + MAE (eqs. 6-8)."""
from __future__ import annotations

import pytest
import torch

from mdreg.masking import visible_ids
from mdreg.models.layers import patchify
from mdreg.registry import BACKBONES, MASKERS, NOISE_SCHEDULES, OBJECTIVES


def random_weights(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def tiny(name, **kw):
    sizes = dict(uvit=dict(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=3, num_heads=2),
                 dit=dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2, num_classes=5),
                 maskdit=dict(img_size=8, patch_size=2, in_chans=4, hidden_size=32, depth=2, num_heads=2,
                              num_classes=5, decoder_hidden_size=16, decoder_depth=1, decoder_num_heads=2))
    return random_weights(BACKBONES.get(name)(**sizes[name], **kw))


def mask_and_ids(net, batch=3, ratio=0.5, seed=0):
    mask = MASKERS.get("patch")(ratio)(batch, net.grid_size, torch.Generator().manual_seed(seed))
    return mask, visible_ids(mask)


CASES = {
    "mdsm-uvit": ("uvit", "mdsm", {"schedule": NOISE_SCHEDULES.get("ddpm_linear")()}),
    "maskdit-dsm-maskdit": ("maskdit", "maskdit", {"mae_weight": 0.0}),
    "maskdit-dsm-dit": ("dit", "maskdit", {"mae_weight": 0.0}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_masked_dsm_has_no_gradient_through_masked_patches(case):
    backbone, objective, kw = CASES[case]
    net = tiny(backbone)
    mask, ids = mask_and_ids(net)
    x0 = torch.randn(3, net.in_chans, 8, 8, requires_grad=True)
    y = torch.tensor([0, 1, 5]) if net.num_classes else None
    out = OBJECTIVES.get(objective)(**kw)(net, x0, y, ids_keep=ids, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    grad = patchify(x0.grad, 2).abs().sum(-1)  # (B, N)
    assert torch.all(grad[mask] == 0) and torch.all(grad[~mask] > 0)


def test_mae_term_reaches_masked_patches_through_its_target():
    net = tiny("maskdit")
    mask, ids = mask_and_ids(net)
    x0 = torch.randn(3, 4, 8, 8, requires_grad=True)
    out = OBJECTIVES.get("maskdit")(mae_weight=0.1)(net, x0, torch.tensor([0, 1, 5]), ids, torch.Generator())
    out.loss.backward()
    assert patchify(x0.grad, 2).abs().sum(-1)[mask].min() > 0
    assert set(out.metrics) == {"loss", "dsm", "mae"}


def test_maskdit_loss_equals_eqs_6_to_8_by_hand():
    """Recompute L = L_DSM + 0.1 L_MAE from the same draws (sigma, noise) with explicit loops."""
    net = tiny("maskdit")
    mask, ids = mask_and_ids(net)
    x0, y = torch.randn(3, 4, 8, 8), torch.tensor([0, 1, 5])
    objective = OBJECTIVES.get("maskdit")()
    got = objective(net, x0, y, ids, torch.Generator().manual_seed(7)).loss

    g = torch.Generator().manual_seed(7)
    sigma = (torch.randn(3, generator=g) * 1.2 - 1.2).exp()
    noisy = x0 + sigma.view(-1, 1, 1, 1) * torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        d = objective.precond.denoise(net, noisy, sigma, y, ids)
    total = 0.0
    for b in range(3):
        weight = (sigma[b] ** 2 + 0.25) / (sigma[b] * 0.5) ** 2
        err = patchify(weight * (d[b:b + 1] - x0[b:b + 1]) ** 2, 2)[0].mean(-1)
        target = patchify(noisy[b:b + 1], 2)[0]
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        mae = ((patchify(d[b:b + 1], 2)[0] - target) ** 2).mean(-1)
        total += err[~mask[b]].mean() + 0.1 * mae[mask[b]].mean()
    assert float(got.detach()) == pytest.approx(float(total) / 3, rel=1e-5)


def test_dsm_on_full_tokens_and_unmasked_fallback():
    net = tiny("maskdit")
    mask, ids = mask_and_ids(net)
    x0, y = torch.randn(3, 4, 8, 8), torch.tensor([0, 1, 5])
    full = OBJECTIVES.get("maskdit")(mae_weight=0.0, dsm_on="full")(net, x0, y, ids, torch.Generator().manual_seed(2))
    part = OBJECTIVES.get("maskdit")(mae_weight=0.0)(net, x0, y, ids, torch.Generator().manual_seed(2))
    assert float(full.loss.detach()) != pytest.approx(float(part.loss.detach()))
    unmasked = OBJECTIVES.get("maskdit")()(net, x0, y, None, torch.Generator().manual_seed(2))
    edm = OBJECTIVES.get("edm")()(net, x0, y, None, torch.Generator().manual_seed(2))
    assert float(unmasked.loss.detach()) == pytest.approx(float(edm.loss.detach()), rel=1e-6)


def test_family_and_argument_errors():
    with pytest.raises(ValueError, match="'edm' noise schedule"):
        OBJECTIVES.get("maskdit")(schedule=NOISE_SCHEDULES.get("ddpm_linear")())
    with pytest.raises(ValueError, match="discrete DDPM noise schedule"):
        OBJECTIVES.get("dsm")(schedule=NOISE_SCHEDULES.get("edm")())
    with pytest.raises(ValueError, match="dsm_on"):
        OBJECTIVES.get("maskdit")(dsm_on="visible")
    net = tiny("dit")
    _, ids = mask_and_ids(net)
    with pytest.raises(ValueError, match="use objective 'maskdit'"):
        OBJECTIVES.get("edm")()(net, torch.randn(3, 4, 8, 8), torch.tensor([0, 1, 2]), ids)


def test_learned_sigma_dit_trains_with_dsm_and_samples():
    net = tiny("dit", learn_sigma=True)
    objective = OBJECTIVES.get("dsm")(schedule=NOISE_SCHEDULES.get("ddpm_linear")())
    loss = objective(net, torch.randn(2, 4, 8, 8), torch.tensor([1, 2]), None, torch.Generator()).loss
    assert torch.isfinite(loss)
    fn = objective.model_fn(net, y=torch.tensor([1, 2]), guidance_scale=2.0)
    assert fn(torch.randn(2, 4, 8, 8), torch.tensor([5, 5])).shape == (2, 4, 8, 8)
