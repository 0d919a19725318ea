"""Every token is visible as often as the masking rule implies: the partial block (block masker)
and the partial border (crop masker) take random cells, not the first ones in raster order.

With raster filling, 90% masking of a 4x4 token grid in 2x2 blocks (14 masked, 2 visible: the
bottom row of one block) never showed token rows 0 and 2, and a 5-cell crop window on 4x4 (a
2x2 square plus the first border cell) never showed the last row. The expected frequencies are
computed here from the rules alone; the empirical ones must lie within 5 binomial standard
errors of them, over enough draws that the raster version misses by far more.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from mdreg.registry import MASKERS

DRAWS = 20_000


def block_visibility(grid: int, b: int, k: int) -> torch.Tensor:
    """P(token visible) for k masked tokens: full = k // b^2 whole blocks out of nb and one partial
    block with rest = k mod b^2 masked cells, blocks and cells uniform without replacement. A token
    is visible when its block is one of the nb - full - 1 untouched ones, or the partial one and
    the token is not among its rest masked cells."""
    nb, cells = (grid // b) ** 2, b * b
    full, rest = divmod(k, cells)
    p = (nb - full) / nb if rest == 0 else (nb - full - 1) / nb + (1 / nb) * (cells - rest) / cells
    return torch.full((grid, grid), p, dtype=torch.float64)


def crop_visibility(grid: int, visible: int) -> torch.Tensor:
    """P(token visible) by enumeration: window corner uniform over its (grid - S + 1)^2 places,
    the s x s square visible, each of the 2s + 1 border cells visible with probability
    (V - s^2) / (2s + 1)."""
    s = math.isqrt(visible)
    window = s if s * s == visible else s + 1
    extra = (visible - s * s) / (2 * s + 1)
    p = torch.zeros(grid, grid, dtype=torch.float64)
    places = list(itertools.product(range(grid - window + 1), repeat=2))
    for top, left in places:
        p[top:top + s, left:left + s] += 1
        if window > s:
            p[top:top + s, left + s] += extra
            p[top + s, left:left + s + 1] += extra
    return p / len(places)


def check_frequencies(mask: torch.Tensor, grid: int, expected: torch.Tensor):
    seen = (~mask).double().mean(0).reshape(grid, grid)
    se = (expected * (1 - expected) / len(mask)).sqrt()
    assert (expected > 0).all()  # every token can be visible
    assert ((seen - expected).abs() <= 5 * se + 1e-12).all(), (seen, expected)


@pytest.mark.parametrize("rounding,k", [("mask_floor", 14), ("keep_floor", 15)])
def test_block_90pct_on_4x4_in_2x2_blocks_shows_every_token(rounding, k):
    masker = MASKERS.get("block")(0.9, block_size=2, rounding=rounding)
    assert masker.num_masked(0.9, 16) == k  # floor(14.4) = 14; 16 - int(16 * 0.1) = 15
    mask = masker(DRAWS, (4, 4), torch.Generator().manual_seed(0))
    assert mask.sum(1).eq(k).all()  # still exactly k per row
    check_frequencies(mask, 4, block_visibility(4, 2, k))  # 1/8 (mask_floor), 1/16 (keep_floor) per token
    partial_patterns = {tuple(row.tolist()) for row in mask[:2000]}
    assert len(partial_patterns) == 4 * math.comb(4, k - 12)  # any block, any cells of it


@pytest.mark.parametrize("ratio,grid,b", [(0.3, 8, 2), (0.55, 8, 4), (0.7, 16, 4)])
def test_block_partial_cells_uniform_on_other_grids(ratio, grid, b):
    masker = MASKERS.get("block")(ratio, block_size=b)
    k = masker.num_masked(ratio, grid * grid)
    assert k % (b * b)  # a partial block exists
    mask = masker(DRAWS // 4, (grid, grid), torch.Generator().manual_seed(1))
    assert mask.sum(1).eq(k).all()
    check_frequencies(mask, grid, block_visibility(grid, b, k))


def test_whole_blocks_draws_no_cells_and_keeps_its_masks():
    """whole_blocks leaves no partial block: its masks use only the block draw, as before."""
    masker = MASKERS.get("block")(0.9, block_size=2, rounding="whole_blocks")
    g = torch.Generator().manual_seed(3)
    mask = masker(64, (4, 4), g)
    after = torch.rand(1, generator=g)
    g2 = torch.Generator().manual_seed(3)
    rank = torch.argsort(torch.argsort(torch.rand(64, 4, generator=g2), dim=1), dim=1)
    assert torch.equal(after, torch.rand(1, generator=g2))  # one (64, 4) draw, nothing more
    blocks = (rank < 3).reshape(64, 2, 1, 2, 1).expand(64, 2, 2, 2, 2).reshape(64, 16)
    assert torch.equal(mask, blocks)


@pytest.mark.parametrize("rounding", ["mask_floor", "keep_floor"])
def test_crop_partial_border_shows_every_token(rounding):
    masker = MASKERS.get("crop")(0.65, rounding=rounding)
    k = masker.num_masked(0.65, 16)
    visible = 16 - k
    assert visible == {"mask_floor": 6, "keep_floor": 5}[rounding]  # a 2x2 square and 2 / 1 border cells
    mask = masker(DRAWS, (4, 4), torch.Generator().manual_seed(2))
    assert mask.sum(1).eq(k).all()
    check_frequencies(mask, 4, crop_visibility(4, visible))


def test_crop_partial_border_on_16x16():
    masker = MASKERS.get("crop")(0.5)
    mask = masker(DRAWS // 4, (16, 16), torch.Generator().manual_seed(4))
    assert mask.sum(1).eq(128).all()  # 128 visible: 11 x 11 square + 7 of its 23 border cells
    check_frequencies(mask, 16, crop_visibility(16, 128))


def test_same_generator_state_same_partial_cells():
    for name, kw in [("block", {"block_size": 2}), ("crop", {})]:
        masker = MASKERS.get(name)(0.7, **kw)
        a = masker(32, (4, 4), torch.Generator().manual_seed(9))
        b = masker(32, (4, 4), torch.Generator().manual_seed(9))
        assert torch.equal(a, b)
