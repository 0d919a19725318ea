"""Official checkpoints load into mdreg backbones and give the official outputs.

Parity: an official-layout state dict is built from random weights (renamed by the facts,
``official_layouts.py``), loaded with ``load_official``, and the mdreg module's output is
compared with an independent functional forward of the official model
(``official_reference.py``): relative L2 difference <= 1e-5 in float32.
"""
from __future__ import annotations

import argparse
import fractions
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F

from mdreg.errors import UserError
from mdreg.masking import visible_ids
from mdreg.models.official import load_official, to_official
from mdreg.registry import BACKBONES, MASKERS
from tests.models.official_layouts import dit_keys, maskdit_keys, maskdm_keys, official_layout, uvit_keys
from tests.models.official_reference import dit_forward, maskdit_forward, maskdm_forward, to_tokens, uvit_forward

TOL = 1e-5


def randomised(model, seed=0):
    """Every parameter random (LayerNorm gains around 1), so no path is trivially zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            noise = torch.randn(p.shape, generator=g) * 0.1
            p.copy_(1 + noise if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")) else noise)
    return model.eval()


def rel_diff(a, b):
    return float((a - b).norm() / b.norm())


def patch_mask(batch, grid, ratio, seed):
    return MASKERS.get("patch")(ratio)(batch, grid, torch.Generator().manual_seed(seed))


def shuffle_from_mask(mask):
    """Official (MaskDiT) ids_shuffle: kept ids first, then the masked ones."""
    return torch.argsort(mask.to(torch.int8), dim=1, stable=True)


def assert_same_state(model, sd):
    own = model.state_dict()
    assert set(own) == set(sd)
    for key in own:
        assert torch.equal(own[key], sd[key]), key


# -- DiT ------------------------------------------------------------------------------------------
def small_dit(**kw):
    return randomised(BACKBONES.get("dit")(img_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4,
                                           num_classes=10, **kw))


def test_dit_parity_and_round_trip():
    ours = small_dit(learn_sigma=True)
    official = official_layout("dit", ours.state_dict())
    model = load_official(official, "dit", num_heads=4)
    assert_same_state(model, ours.state_dict())
    assert model.learn_sigma and model.out_chans == 8
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([0.0, 500.0, 999.0]), torch.tensor([1, 7, 10])  # 10 = null
    with torch.no_grad():
        assert rel_diff(model(x, t, y), dit_forward(official, x, t, y, heads=4)) <= TOL
    back = to_official(model.state_dict(), "dit")
    assert set(back) == set(official) and all(torch.equal(back[k], official[k]) for k in official)


def test_dit_masked_output_is_zero_at_masked_patches():
    model = small_dit()
    mask = patch_mask(2, model.grid_size, 0.5, 1)
    with torch.no_grad():
        out = model(torch.randn(2, 4, 8, 8), torch.rand(2), torch.tensor([0, 3]), ids_keep=visible_ids(mask))
    tokens = to_tokens(out, 2)
    assert torch.all(tokens[mask] == 0) and torch.all(tokens[~mask].abs().sum(-1) > 0)


# -- MaskDiT ---------------------------------------------------------------------------------------
def small_maskdit():
    return randomised(BACKBONES.get("maskdit")(img_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4,
                                               num_classes=10, decoder_hidden_size=32, decoder_depth=2,
                                               decoder_num_heads=4))


def maskdit_official_file(ours):
    net = official_layout("maskdit", ours.state_dict())
    raw = {f"model.{k}": v + 1 for k, v in net.items()}  # raw weights differ from EMA weights
    return net, {"model": raw, "ema": {f"model.{k}": v for k, v in net.items()}, "opt": {},
                 "args": argparse.Namespace(model_type="DiT-XL/2")}


@pytest.mark.parametrize("ratio", [0.0, 0.5])
def test_maskdit_parity(ratio):
    ours = small_maskdit()
    net, checkpoint = maskdit_official_file(ours)
    model = load_official(checkpoint, "maskdit", num_heads=4, decoder_num_heads=4)
    assert_same_state(model, ours.state_dict())
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([-1.3, 0.1, 0.9]), torch.tensor([2, 9, 10])
    onehot = F.one_hot(y, 11)[:, :10].float()  # the null label is the all-zero row
    ids_keep, shuffle, keep = None, None, None
    if ratio:
        mask = patch_mask(3, model.grid_size, ratio, 2)
        ids_keep, shuffle, keep = visible_ids(mask), shuffle_from_mask(mask), int((~mask[0]).sum())
    with torch.no_grad():
        ref = maskdit_forward(net, x, t, onehot, 4, 4, shuffle, keep)
        assert rel_diff(model(x, t, y, ids_keep=ids_keep), ref) <= TOL
    if ratio:  # the official shuffle order is random: the kept set, not its order, matters
        shuffled = torch.cat([shuffle[:, :keep].flip(1), shuffle[:, keep:]], dim=1)
        with torch.no_grad():
            assert rel_diff(maskdit_forward(net, x, t, onehot, 4, 4, shuffled, keep), ref) <= TOL


def test_maskdit_file_picks_ema_or_raw_weights(tmp_path):
    ours = small_maskdit()
    net, checkpoint = maskdit_official_file(ours)
    path = tmp_path / "checkpoint.pt"
    torch.save(checkpoint, path)
    with warnings.catch_warnings():  # its argparse Namespace is allowed: weights_only loading, no warning
        warnings.simplefilter("error")
        ema = load_official(path, "maskdit", num_heads=4, decoder_num_heads=4)
        raw = load_official(path, "maskdit", weights="model", num_heads=4, decoder_num_heads=4)
    assert torch.equal(ema.mask_token, net["mask_token"]) and torch.equal(raw.mask_token, net["mask_token"] + 1)


def test_the_namespace_is_allowed_only_while_loading(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(maskdit_official_file(small_maskdit())[1], path)
    load_official(path, "maskdit", num_heads=4, decoder_num_heads=4)
    with pytest.raises(pickle.UnpicklingError, match="argparse.Namespace"):  # not added for the whole process
        torch.load(path, weights_only=True)


def test_files_with_other_objects_still_load_after_a_warning(tmp_path):
    ours = small_maskdit()
    net, checkpoint = maskdit_official_file(ours)
    path = tmp_path / "checkpoint.pt"
    torch.save({**checkpoint, "args": fractions.Fraction(1, 3)}, path)  # a class weights_only refuses
    with pytest.warns(UserWarning, match=r"holds more than tensors \(fractions.Fraction\)"):
        model = load_official(path, "maskdit", num_heads=4, decoder_num_heads=4)
    assert_same_state(model, ours.state_dict())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n" * 20, b"\x80\x02garbage", b"PK\x03\x04broken zip"])
def test_unreadable_file_is_one_user_error_naming_it(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unpickling in full" warning for a file that is not a checkpoint
        with pytest.raises(UserError, match=f"cannot read {path}: not a PyTorch checkpoint"):
            load_official(path, "dit")


def test_maskdit_without_mask_token_is_the_zero_filled_model():
    net = official_layout("maskdit", small_maskdit().state_dict())
    del net["mask_token"]
    model = load_official(net, "maskdit", num_heads=4, decoder_num_heads=4)
    assert model.mask_token is None and "mask_token" not in model.state_dict()
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([-1.3, 0.1, 0.9]), torch.tensor([2, 9, 10])
    mask = patch_mask(3, model.grid_size, 0.5, 2)
    shuffle, keep = shuffle_from_mask(mask), int((~mask[0]).sum())
    with torch.no_grad():
        ref = maskdit_forward(net, x, t, F.one_hot(y, 11)[:, :10].float(), 4, 4, shuffle, keep)
        assert rel_diff(model(x, t, y, ids_keep=visible_ids(mask)), ref) <= TOL


def test_maskdit_without_decoder_is_refused_clearly():
    dit_part = {k: v for k, v in official_layout("maskdit", small_maskdit().state_dict()).items()
                if not k.startswith(("decoder", "mask_token", "final_layer"))}
    dit_part["final_layer.linear.weight"] = torch.zeros(16, 64)  # DiT's final layer on the 64-wide encoder
    with pytest.raises(UserError, match="no decoder .*use_decoder=False.* not model.*Supported: MaskDiT checkpoints "
                                        "with the decoder"):
        load_official({"ema": {f"model.{k}": v for k, v in dit_part.items()}}, "maskdit", num_heads=4)


def test_unknown_head_count_advice_fits_the_python_api():
    official = official_layout("dit", small_dit().state_dict())  # width 64 is no published size
    with pytest.raises(UserError, match=r"cannot infer num_heads .* pass num_heads=\.\.\. to load_official$"):
        load_official(official, "dit")


# -- U-ViT (baofff) --------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True])
def test_uvit_parity_and_round_trip(conditional):
    kw = dict(num_classes=10, mlp_time_embed=True, conv=True, qkv_bias=True) if conditional else {}
    ours = randomised(BACKBONES.get("uvit")(img_size=8, patch_size=2, embed_dim=64, depth=5, num_heads=4, **kw))
    official = official_layout("uvit", ours.state_dict())
    assert set(official) == uvit_keys(2, qkv_bias=conditional, labels=conditional, time_mlp=conditional,
                                      conv=conditional)
    model = load_official(official, "uvit", num_heads=4)
    assert_same_state(model, ours.state_dict())
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([3.0, 870.0])
    y = torch.tensor([4, 10]) if conditional else None
    with torch.no_grad():
        assert rel_diff(model(x, t, y), uvit_forward(official, x, t, y, heads=4)) <= TOL


# -- maskdm (jiachenlei) ---------------------------------------------------------------------------
@pytest.mark.parametrize("dwt", [False, True])
def test_maskdm_parity_and_round_trip(dwt):
    name = "uvit_dwt" if dwt else "uvit"
    kw = dict(in_chans=12, qkv_bias=True) if dwt else dict(in_chans=3)
    ours = BACKBONES.get(name)(img_size=8, patch_size=2, embed_dim=64, depth=5, num_heads=4, **kw)
    randomised(ours)
    with torch.no_grad():  # the official (BEiT-style) attention has no key bias
        for block in [*ours.in_blocks, ours.mid_block, *ours.out_blocks]:
            if block.attn.qkv.bias is not None:
                block.attn.qkv.bias[64:128] = 0
    official = official_layout("maskdm", ours.state_dict())
    assert set(official) == maskdm_keys(2, dwt=dwt, qkv_bias=dwt)
    wrapped = {"model": {f"model.{k}": v for k, v in official.items()} | {"betas": torch.rand(10)},
               "ema": {f"ema_model.model.{k}": v for k, v in official.items()} | {"initted": torch.ones(1)}}
    model = load_official(wrapped, "maskdm", num_heads=4)
    assert type(model).__name__ == ("UViTDWT" if dwt else "UViT")
    assert_same_state(model, ours.state_dict())
    back = to_official(model.state_dict(), "maskdm")
    assert set(back) == set(official) and all(torch.equal(back[k], official[k]) for k in official)

    x, t = torch.randn(2, kw["in_chans"], 8, 8), torch.tensor([10.0, 600.0])
    with torch.no_grad():
        assert rel_diff(model(x, t), maskdm_forward(official, x, t, heads=4)) <= TOL
        mask = patch_mask(2, model.grid_size, 0.5, 3)
        ids_keep = visible_ids(mask)
        out = model(x, t, ids_keep=ids_keep)
        extras = torch.zeros(2, 1, dtype=torch.bool)
        sets = [mask, mask] if dwt else [mask]  # the DWT model masks the same cells in both token sets
        ref = maskdm_forward(official, x, t, heads=4, mask=torch.cat([extras, *sets], dim=1))
    if dwt:
        low, high = to_tokens(out[:, :3], 2), to_tokens(out[:, 3:], 2)
        ours_visible = torch.cat([low[~mask].reshape(2, -1, 12), high[~mask].reshape(2, -1, 36)], dim=-1)
        ref = torch.cat(ref, dim=-1)
    else:
        ours_visible = to_tokens(out, 2)[~mask].reshape(2, -1, 12)
    assert rel_diff(ours_visible, ref) <= TOL


# -- layouts, prefixes and errors ------------------------------------------------------------------
def test_xl_layouts_match_the_documented_lists():
    with torch.device("meta"):
        dit = BACKBONES.get("dit_xl_2")(learn_sigma=True)
        maskdit = BACKBONES.get("maskdit_xl_2")()
        maskdm_l = BACKBONES.get("maskdm_l_dwt")(qkv_bias=True)
    assert set(to_official(dit.state_dict(), "dit")) == dit_keys(28)
    maskdit_sd = to_official(maskdit.state_dict(), "maskdit")
    assert set(maskdit_sd) == maskdit_keys(28, 8)
    shapes = {"pos_embed": (1, 256, 1152), "decoder_pos_embed": (1, 256, 512), "mask_token": (1, 1, 512),
              "y_embedder.embedding_table.weight": (1152, 1000), "final_layer.linear.weight": (16, 512),
              "decoder_layer.linear.weight": (512, 1152), "decoder_blocks.0.adaLN_modulation.1.weight": (3072, 1152)}
    assert {k: tuple(maskdit_sd[k].shape) for k in shapes} == shapes
    assert tuple(dit.state_dict()["y_embedder.embedding_table.weight"].shape) == (1001, 1152)
    assert set(to_official(maskdm_l.state_dict(), "maskdm")) == maskdm_keys(8, dwt=True, qkv_bias=True)


def test_compile_and_ddp_prefixes_are_stripped():
    ours = small_dit()
    official = {f"module._orig_mod.{k}": v for k, v in ours.state_dict().items()}
    assert_same_state(load_official(official, "dit", num_heads=4), ours.state_dict())


def test_mismatch_is_one_error_listing_every_key():
    official = official_layout("dit", small_dit().state_dict())
    del official["blocks.1.mlp.fc2.bias"]
    official["blocks.1.extra.weight"] = torch.zeros(1)
    official["final_layer.linear.bias"] = torch.zeros(3)
    with pytest.raises(UserError) as info:
        load_official(official, "dit", num_heads=4)
    message = str(info.value)
    assert "blocks.1.mlp.fc2.bias" in message and "blocks.1.extra.weight" in message
    assert "final_layer.linear.bias" in message


def test_wrong_kind_and_missing_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="kinds are"):
        load_official({}, "mdt")
    with pytest.raises(UserError, match="no maskdm network"):
        load_official(official_layout("dit", small_dit().state_dict()), "maskdm")
    with pytest.raises(UserError, match="holds no 'ema' weights"):
        load_official({"model": {}, "step": 3}, "dit")
    with pytest.raises(UserError, match="does not exist"):
        load_official(tmp_path / "nope.pt", "dit")
