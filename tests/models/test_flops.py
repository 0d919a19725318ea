"""Forward cost in fvcore MACs (mdreg.models.flops).

The papers' XL numbers (DiT-XL/2 118.6 GMACs; MaskDiT-XL/2 65.5 GMACs at 50% masking) are
checked without tracing a 675M-parameter model: the blocks of a stack are identical, so
the cost is exactly linear in depth, and two shallow XL-width models (1 and 2 encoder
blocks) fix the line that the 28-block model lies on. ``tools/registry.py show
dit_xl_2 --flops`` traces the full model (docs/components.md).
"""
from __future__ import annotations

import pytest
import torch

from mdreg.models.flops import forward_gmacs
from mdreg.registry import BACKBONES


def gmacs(name, mask_ratio=0.0, batch=1, **kw):
    with torch.device("meta"):
        model = BACKBONES.get(name)(**kw)
    return forward_gmacs(model, batch, mask_ratio)


def at_depth_28(name, mask_ratio=0.0, **kw):
    one, two = gmacs(name, mask_ratio, depth=1, **kw), gmacs(name, mask_ratio, depth=2, **kw)
    return one + 27 * (two - one)


def test_dit_xl_2_is_118_6_gmacs():
    kw = dict(img_size=32, patch_size=2, in_chans=4, hidden_size=1152, num_heads=16, learn_sigma=True)
    assert round(at_depth_28("dit", **kw), 1) == 118.6


def test_maskdit_xl_2_at_half_masking_is_65_5_gmacs():
    kw = dict(img_size=32, patch_size=2, in_chans=4, hidden_size=1152, num_heads=16)
    assert round(at_depth_28("maskdit", 0.5, **kw), 1) == 65.5


def test_attention_and_linear_macs_by_hand():
    """DiT-like block on N tokens of width D: 12 N D^2 (qkv, proj, MLP) + 2 N^2 D (attention)
    + 6 D^2 (adaLN of one condition vector) MACs."""
    n, d = 16, 32
    one = gmacs("dit", depth=1, img_size=8, patch_size=2, hidden_size=d, num_heads=2, num_classes=0)
    two = gmacs("dit", depth=2, img_size=8, patch_size=2, hidden_size=d, num_heads=2, num_classes=0)
    assert round((two - one) * 1e9) == 12 * n * d * d + 2 * n * n * d + 6 * d * d


def test_masking_and_batch_scale_the_cost():
    kw = dict(img_size=16, patch_size=2, hidden_size=64, depth=2, num_heads=4)
    full, half = gmacs("dit", 0.0, **kw), gmacs("dit", 0.5, **kw)
    assert 0.4 < half / full < 0.55
    assert gmacs("dit", 0.5, batch=3, **kw) == pytest.approx(3 * half, rel=1e-6)
