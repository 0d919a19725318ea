"""Backbone constructors: bad sizes fail first with one ValueError naming the argument (also on
the ``meta`` device, where the planner builds them), every backbone and preset builds on
``meta``, and ``num_prefix_tokens`` counts the non-patch rows of each position table."""
from __future__ import annotations

import pytest
import torch

from mdreg.config import L, instantiate
from mdreg.errors import ConfigError
from mdreg.registry import BACKBONES
from tests.models.test_backbone_contract import TINY

# (backbone, arguments, the message's start); each is one bad argument on a tiny valid model
BAD = [
    ("uvit", dict(embed_dim=128, num_heads=3), "num_heads=3 does not divide embed_dim=128; choose num_heads among "
                                               "1, 2, 4, 8, 16, 32"),
    ("uvit", dict(img_size=30, patch_size=4), "patch_size=4 does not divide img_size=30"),
    ("uvit", dict(depth=0), "depth=0 must be a positive integer"),
    ("uvit", dict(embed_dim=-32), "embed_dim=-32 must be a positive integer"),
    ("uvit", dict(mlp_ratio=0.0), "mlp_ratio=0.0 must be a positive number"),
    ("uvit", dict(num_classes=-1), "num_classes=-1 must be 0"),
    ("uvit", dict(pos_init="zeros"), "pos_init='zeros' is not one of"),
    ("uvit", dict(embed_dim=30, num_heads=2, pos_init="sincos"), "embed_dim=30 must be a multiple of 4"),
    ("uvit_dwt", dict(in_chans=10), "uvit_dwt: in_chans=10 must be 4 x the image channels"),
    ("uvit_dwt", dict(num_heads=5), "num_heads=5 does not divide embed_dim=32"),
    ("dit", dict(hidden_size=48, num_heads=5), "num_heads=5 does not divide hidden_size=48"),
    ("dit", dict(hidden_size=30, num_heads=2), "hidden_size=30 must be a multiple of 4"),
    ("dit", dict(patch_size=3), "patch_size=3 does not divide img_size=8; choose patch_size among 1, 2, 4, 8"),
    ("dit", dict(in_chans=0), "in_chans=0 must be a positive integer"),
    ("maskdit", dict(decoder_num_heads=3), "decoder_num_heads=3 does not divide decoder_hidden_size=16"),
    ("maskdit", dict(decoder_depth=0), "decoder_depth=0 must be a positive integer"),
    ("maskdit", dict(decoder_hidden_size=18, decoder_num_heads=2), "decoder_hidden_size=18 must be a multiple of 4"),
    ("maskdit", dict(num_heads=3), "num_heads=3 does not divide hidden_size=32"),
    ("coord_transformer", dict(embed_dim=16, num_heads=3), "num_heads=3 does not divide embed_dim=16"),
    ("coord_transformer", dict(num_coords=0), "num_coords=0 must be a positive integer"),
]
TINY_ALL = {**TINY, "coord_transformer": dict(num_coords=3, embed_dim=16, depth=1, num_heads=2)}


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name,bad,message", BAD)
def test_a_bad_argument_is_one_value_error_naming_it(name, bad, message, device):
    with torch.device(device), pytest.raises(ValueError) as info:
        BACKBONES.get(name)(**{**TINY_ALL[name], **bad})
    assert str(info.value).startswith(message)


def test_instantiate_names_the_config_key():
    with torch.device("meta"), pytest.raises(ConfigError, match=r"^model: .*num_heads=3 does not divide embed_dim=128"):
        instantiate(L("backbone:uvit")(img_size=16, embed_dim=128, num_heads=3), key="model")


def test_presets_check_their_free_arguments():
    with torch.device("meta"), pytest.raises(ValueError, match="patch_size=4 does not divide img_size=30"):
        BACKBONES.get("maskdm_s")(img_size=30)
    with torch.device("meta"), pytest.raises(ValueError, match="patch_size=2 does not divide img_size=33"):
        BACKBONES.get("maskdit_xl_2")(img_size=33)


VARIANTS = {
    **{name: kw for name, kw in TINY_ALL.items()},
    "uvit_sincos_labels": ("uvit", dict(TINY["uvit"], pos_init="sincos", num_classes=3, conv=True)),
    "uvit_dwt_sincos": ("uvit_dwt", dict(TINY["uvit_dwt"], pos_init="sincos", num_classes=3)),
    "maskdit_no_token": ("maskdit", dict(TINY["maskdit"], mask_token=False)),
    "dit_learned_sigma": ("dit", dict(TINY["dit"], learn_sigma=True, num_classes=0)),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_backbone_builds_on_meta(variant):
    name, kw = VARIANTS[variant] if isinstance(VARIANTS[variant], tuple) else (variant, VARIANTS[variant])
    with torch.device("meta"):
        model = BACKBONES.get(name)(**kw)
    reference = BACKBONES.get(name)(**kw)
    assert all(p.is_meta for p in model.state_dict().values())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


@pytest.mark.parametrize("preset", sorted(n for n in BACKBONES.all_names() if getattr(BACKBONES.get(n), "fixed", None)))
def test_every_preset_builds_on_meta(preset):
    with torch.device("meta"):
        model = BACKBONES.get(preset)()
    assert model.num_prefix_tokens in (0, 1, 2) and all(p.is_meta for p in model.parameters())


def test_num_prefix_tokens_counts_the_rows_before_the_patch_positions():
    def build(name, **kw):
        return BACKBONES.get(name)(**{**TINY_ALL[name], **kw})

    for model, prefix in [(build("uvit"), 1), (build("uvit", num_classes=3), 2),
                          (build("uvit", num_classes=3, null_class=False), 2), (build("uvit_dwt"), 1),
                          (build("uvit_dwt", num_classes=3), 2), (build("dit"), 0), (build("maskdit"), 0),
                          (build("coord_transformer"), 0)]:
        assert model.num_prefix_tokens == prefix
        assert model.pos_embed.shape[1] == prefix + model.num_patches
