"""Parameter counts of the named models against the papers (built on the meta device: no memory).

MaskDM Table 4: S 44M, B 102M, L 233M (within 1%); DiT-XL/2 675.1M (DiT Table 4, learned
sigma, 32x32x4 latents); MaskDiT-XL/2 730.5M with a 669.3M encoder-block stack and a
56.9M decoder (decoder layer, blocks, mask token and positions; official-code facts).
"""
from __future__ import annotations

import pytest
import torch

from mdreg.models.flops import count_parameters
from mdreg.registry import BACKBONES


def build(name, **kw):
    with torch.device("meta"):
        return BACKBONES.get(name)(**kw)


@pytest.mark.parametrize("name,kw,table", [
    ("maskdm_s", dict(img_size=64, patch_size=4), 44e6),         # 44.29M: CelebA 64x64
    ("maskdm_b", dict(img_size=256, patch_size=4), 102e6),       # 102.42M: CelebA-HQ 256x256
    ("maskdm_l", dict(img_size=256, patch_size=4), 233e6),       # 235.17M (+0.93%)
    ("maskdm_l_dwt", dict(img_size=128, patch_size=4), 233e6),   # 233.36M (+0.16%): sec. 4.3's setting
    ("maskdm_b_dwt", dict(img_size=128, patch_size=4), 102e6),   # 101.07M (-0.91%)
])
def test_maskdm_table4_within_one_percent(name, kw, table):
    assert abs(count_parameters(build(name, **kw)) / table - 1) < 0.01


def test_exact_counts():
    assert count_parameters(build("maskdm_s")) == 44_292_144
    assert count_parameters(build("maskdm_l_dwt")) == 233_364_672
    assert round(count_parameters(build("dit_xl_2", learn_sigma=True)) / 1e6, 1) == 675.1
    maskdit = build("maskdit_xl_2")
    assert round(count_parameters(maskdit) / 1e6, 1) == 730.5
    assert round(sum(p.numel() for p in maskdit.blocks.parameters()) / 1e6, 1) == 669.3
    decoder = [maskdit.decoder_layer, maskdit.decoder_blocks]  # + mask token and positions; final layer apart
    assert round((sum(p.numel() for m in decoder for p in m.parameters()) + maskdit.mask_token.numel()
                  + maskdit.decoder_pos_embed.numel()) / 1e6, 1) == 56.9


@pytest.mark.parametrize("size,hidden,depth,heads", [("s", 384, 12, 6), ("b", 768, 12, 12), ("l", 1024, 24, 16),
                                                     ("xl", 1152, 28, 16)])
@pytest.mark.parametrize("patch", [2, 4, 8])
def test_dit_presets(size, hidden, depth, heads, patch):
    model = build(f"dit_{size}_{patch}")
    assert (model.hidden_size, len(model.blocks), model.blocks[0].attn.num_heads, model.patch_size) == \
        (hidden, depth, heads, patch)
    assert model.grid_size == (32 // patch, 32 // patch) and model.null_label == 1000


def test_presets_refuse_their_fixed_arguments():
    from mdreg.errors import ConfigError
    with pytest.raises(ConfigError, match="use backbone 'dit'"):
        BACKBONES.get("dit_xl_2")(depth=3)
