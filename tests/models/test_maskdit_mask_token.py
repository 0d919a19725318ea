"""MaskDiT without a mask token (``mask_token=False``): the official lambda = 0 model.

Facts (official-code-facts.md, "Corrections"): the official model creates ``mask_token`` only
when the MAE coefficient is > 0; otherwise masked positions enter the decoder as fixed zeros,
to which the decoder positions are added. So: no parameter, decoder input at a masked position
= exactly the decoder position embedding, the same outputs and gradients as the official
forward written from the facts (``official_reference.maskdit_forward`` with zeros), and
official lambda = 0 checkpoints (no ``mask_token`` key) load as they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mdreg.config.lazy import target_ref
from mdreg.runs.plan import build_plans
from mdreg.masking import visible_ids
from mdreg.models.official import load_official, to_official
from mdreg.registry import BACKBONES, MASKERS
from tests.models.official_layouts import maskdit_keys, official_layout
from tests.models.official_reference import maskdit_forward, to_tokens
from tests.models.test_backbone_contract import TINY, inputs
from tests.recipes.tiny_overrides import REPO

CLASSES = TINY["maskdit"]["num_classes"]


def build(mask_token: bool, seed: int = 0):
    torch.manual_seed(seed)
    model = BACKBONES.get("maskdit")(**TINY["maskdit"], mask_token=mask_token)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # every weight random, so no path is trivially zero
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def half_mask(seed: int = 1):
    return MASKERS.get("patch")(0.5)(2, (4, 4), torch.Generator().manual_seed(seed))  # (2, 16), True = masked


def test_no_mask_token_parameter():
    model, with_token = build(False), build(True)
    assert model.mask_token is None
    assert "mask_token" not in dict(model.named_parameters()) and "mask_token" not in model.state_dict()
    width = TINY["maskdit"]["decoder_hidden_size"]
    assert sum(p.numel() for p in with_token.parameters()) - sum(p.numel() for p in model.parameters()) == width
    assert set(with_token.state_dict()) - set(model.state_dict()) == {"mask_token"}


def decoder_input(model, x, t, y, ids_keep):
    seen = []
    hook = model.decoder_blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    with torch.no_grad():
        model(x, t, y, ids_keep=ids_keep)
    hook.remove()
    return seen[0]  # (B, N, D_dec)


def test_masked_positions_enter_the_decoder_as_exactly_the_decoder_positions():
    mask = half_mask()
    x, t, y = inputs(build(False))
    got = decoder_input(build(False), x, t, y, visible_ids(mask))
    positions = build(False).decoder_pos_embed.expand(2, -1, -1)
    assert torch.equal(got[mask], positions[mask])  # zeros + positions, bit for bit
    assert not torch.equal(got[~mask], positions[~mask])  # visible positions carry the encoder's tokens
    with_token = build(True)
    got = decoder_input(with_token, x, t, y, visible_ids(mask))
    assert torch.equal(got[mask], (with_token.mask_token + with_token.decoder_pos_embed).expand(2, -1, -1)[mask])


def reference_state(model):
    """The official-layout state dict as leaf tensors that collect gradients."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in official_layout("maskdit", model.state_dict()).items()}


def test_outputs_loss_and_gradients_equal_the_official_forward_with_zeros():
    model = build(False).train()
    x, t, y = inputs(model)
    mask = half_mask()
    keep = int((~mask[0]).sum())
    shuffle = torch.argsort(mask.to(torch.int8), dim=1, stable=True)  # official order: kept ids first
    target = torch.randn_like(x)
    weight = torch.tensor([0.5, 2.0]).view(2, 1, 1, 1)

    def loss_of(out):  # a weighted squared error over every patch, masked ones included
        return (weight * (out - target) ** 2).mean()

    ours = loss_of(model(x, t, y, ids_keep=visible_ids(mask)))
    ours.backward()
    sd = reference_state(model)
    onehot = F.one_hot(y, CLASSES + 1)[:, :CLASSES].float()
    reference = loss_of(maskdit_forward(sd, x, t, onehot, 2, 2, shuffle, keep))
    reference.backward()
    assert abs(float((ours / reference).detach()) - 1) <= 1e-6
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert set(grads) == {k for k, v in sd.items() if k not in ("pos_embed", "decoder_pos_embed")}
    for name, grad in grads.items():  # float32 rounding of two different op orders: relative L2 <= 1e-5
        assert float((grad - sd[name].grad).norm() / sd[name].grad.norm()) <= 1e-5, name


def test_every_parameter_gets_a_gradient_masked_or_not_and_sampling_is_unchanged():
    for ids in (None, visible_ids(half_mask())):
        model = build(False).train()
        x, t, y = inputs(model)
        model(x, t, y, ids_keep=ids).square().mean().backward()
        assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    with torch.no_grad():
        sampled = model(x, t, y)
    assert torch.equal(model(x, t, y).detach(), sampled)


def test_official_lambda0_checkpoint_loads_and_round_trips():
    ours = build(False)
    official = official_layout("maskdit", ours.state_dict())
    assert set(official) == maskdit_keys(2, 2) - {"mask_token"}
    model = load_official({"ema": {f"model.{k}": v for k, v in official.items()}}, "maskdit",
                          num_heads=2, decoder_num_heads=2)
    assert model.mask_token is None
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ours.state_dict().items())
    assert set(to_official(model.state_dict(), "maskdit")) == set(official)
    plain = BACKBONES.get("maskdit")(**TINY["maskdit"], mask_token=False)
    plain.load_state_dict(ours.state_dict())  # strict: nothing missing, nothing left over
    mask = half_mask(3)
    x, t, y = inputs(plain)
    with torch.no_grad():
        out = plain(x, t, y, ids_keep=visible_ids(mask))
    assert torch.all(to_tokens(out, 2)[mask].abs().sum(-1) > 0)  # the decoder predicts masked patches from positions


def test_table2_runs_have_a_mask_token_exactly_when_lambda_is_positive():
    plans = build_plans(REPO / "recipes" / "maskdit_in256_table2.py", [])
    checked = 0
    for plan in plans:
        if target_ref(plan.cfg.model) != "backbone:maskdit_xl_2":
            continue
        weight = plan.cfg.stages.main.objective.mae_weight
        assert plan.cfg.model.mask_token == (weight > 0), plan.sweep_values.get("_name_")
        checked += 1
    assert checked == 8
