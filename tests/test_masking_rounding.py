"""Maskers' ``rounding`` option: how many tokens a ratio hides (``masker.num_masked``).

Facts (official code): MaskDiT ``models/maskdit.py`` ``get_mask`` keeps ``int(L * (1 - r))``
tokens; maskdm ``datasets/masking_generator.py`` masks ``int(r * N)`` patches
(``RandomMaskingGenerator``) or ``int(r * N) // b**2`` whole blocks
(``RandomBlockMaskingGenerator``), and its Table 1 crop configs set crop sides 15 / 11 / 5 on
the 16x16 grid of 64px / patch 4 for 10 / 50 / 90% (``configs/ablation/.../crop/*.yml``).
"""
from __future__ import annotations

import math

import pytest
import torch

from mdreg.registry import MASKERS

N, GRID = 256, (16, 16)


def cosine(step, total=37_500):
    """MaskDiT's cosine unmasking ratio 0.5 cos^4(pi/2 i/n)."""
    return 0.5 * math.cos(math.pi / 2 * step / total) ** 4


# (step of the 37.5k cosine schedule, floor(r N), N - int(N (1 - r))): computed once from the formulas above
COSINE_CASES = [(5_000, 117, 118), (10_000, 89, 90), (20_000, 25, 26), (30_000, 1, 2)]


@pytest.mark.parametrize("step,mask_floor,keep_floor", COSINE_CASES)
def test_keep_floor_is_maskdits_rule_and_differs_by_one_on_the_cosine_schedule(step, mask_floor, keep_floor):
    r = cosine(step)
    assert math.floor(r * N) == mask_floor and N - int(N * (1 - r)) == keep_floor
    official = MASKERS.get("patch")(0.5, rounding="keep_floor")
    ours = MASKERS.get("patch")(0.5)
    assert official.num_masked(r, N) == keep_floor and ours.num_masked(r, N) == mask_floor
    mask = official(4, GRID, torch.Generator().manual_seed(0), ratio=r)
    assert mask.sum(1).tolist() == [keep_floor] * 4  # the drawn masks follow the count


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 1.0])
def test_rules_agree_when_ratio_times_n_is_whole(ratio):
    assert MASKERS.get("patch")(ratio, rounding="keep_floor").num_masked(ratio, N) == int(ratio * N)
    assert MASKERS.get("patch")(ratio).num_masked(ratio, N) == int(ratio * N)


@pytest.mark.parametrize("ratio,b,count", [(0.1, 2, 24), (0.1, 4, 16), (0.5, 8, 128), (0.9, 4, 224), (0.9, 2, 228)])
def test_whole_blocks_is_maskdms_block_rule(ratio, b, count):
    masker = MASKERS.get("block")(ratio, block_size=b, rounding="whole_blocks")
    assert masker.num_masked(ratio, N) == (int(ratio * N) // b ** 2) * b ** 2 == count
    mask = masker(6, GRID, torch.Generator().manual_seed(1)).reshape(6, 16 // b, b, 16 // b, b)
    per_block = mask.permute(0, 1, 3, 2, 4).reshape(6, -1, b * b).sum(-1)
    assert set(per_block.unique().tolist()) <= {0, b * b} and (per_block.sum(1) == count).all()  # whole blocks only
    assert MASKERS.get("block")(ratio, block_size=b).num_masked(ratio, N) == int(ratio * N)  # default: floor(rN)


@pytest.mark.parametrize("ratio,side", [(0.1, 15), (0.5, 11), (0.9, 5)])
def test_square_window_reproduces_maskdms_crop_sizes(ratio, side):
    masker = MASKERS.get("crop")(ratio, rounding="square_window")
    assert masker.num_masked(ratio, N) == N - side * side
    for row in masker(4, GRID, torch.Generator().manual_seed(2)):
        rows, cols = torch.nonzero(~row.reshape(GRID), as_tuple=True)
        assert len(rows) == side * side and int(rows.max() - rows.min()) == side - 1 == int(cols.max() - cols.min())


def test_none_masker_and_bad_rounding():
    assert MASKERS.get("none")().num_masked(0.5, N) == 0
    with pytest.raises(ValueError, match="rounding='whole_blocks' is not a rule of this masker.*'keep_floor'"):
        MASKERS.get("patch")(0.5, rounding="whole_blocks")
    with pytest.raises(ValueError, match="rounding='ceil'"):
        MASKERS.get("block")(0.5, block_size=2, rounding="ceil")
    assert "keep_floor" in repr(MASKERS.get("patch")(0.5, rounding="keep_floor"))
