"""Maskers: exact counts floor(ratio*N), shapes, determinism from the generator, shapes of the masks."""
from __future__ import annotations

import math

import pytest
import torch

from mdreg.masking import BlockMasker, CropMasker, num_masked, visible_ids, window_cells
from mdreg.registry import MASKERS

RATIOS = [0.0, 0.1, 0.29, 0.5, 0.7, 0.9, 0.97, 1.0]


def draw(name, ratio, grid=(16, 16), batch=6, seed=0, **kw):
    return MASKERS.get(name)(ratio=ratio, **kw)(batch, grid, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name,kw", [("patch", {}), ("block", {"block_size": 2}), ("block", {"block_size": 4}),
                                     ("block", {"block_size": 8}), ("crop", {})])
@pytest.mark.parametrize("ratio", RATIOS)
def test_exact_count_shape_and_dtype(name, kw, ratio):
    mask = draw(name, ratio, **kw)
    assert mask.shape == (6, 256) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [num_masked(ratio, 256)] * 6
    assert visible_ids(mask).shape == (6, 256 - num_masked(ratio, 256))


@pytest.mark.parametrize("name,kw", [("patch", {}), ("block", {"block_size": 4}), ("crop", {})])
def test_same_generator_state_same_mask(name, kw):
    assert torch.equal(draw(name, 0.5, seed=3, **kw), draw(name, 0.5, seed=3, **kw))
    assert not torch.equal(draw(name, 0.5, seed=3, **kw), draw(name, 0.5, seed=4, **kw))
    masks = draw(name, 0.5, batch=32, seed=3, **kw)
    assert len({tuple(m.tolist()) for m in masks}) > 1  # rows are drawn independently


@pytest.mark.parametrize("b", [2, 4, 8])
def test_block_mask_is_whole_blocks_plus_one_partial_block(b):
    ratio, grid = 0.3, (16, 16)
    k = num_masked(ratio, 256)
    full, rest = divmod(k, b * b)
    mask = draw("block", ratio, grid, batch=8, block_size=b).reshape(8, 16 // b, b, 16 // b, b)
    per_block = mask.permute(0, 1, 3, 2, 4).reshape(8, -1, b * b)  # (batch, blocks, cells in raster order)
    counts = per_block.sum(-1)
    assert ((counts == b * b).sum(1) == full).all()
    partial = per_block[(counts > 0) & (counts < b * b)]
    assert partial.shape[0] == (8 if rest else 0)
    if rest:  # `rest` cells of it, drawn at random (tests/test_masking_block_coverage.py: how often each)
        assert (partial.sum(-1) == rest).all() and len({tuple(p.tolist()) for p in partial}) > 1


def test_block_covers_every_block_uniformly():
    mask = draw("block", 0.25, (8, 8), batch=4000, block_size=4)  # one of four 4x4 blocks per row
    share = mask.reshape(4000, 2, 4, 2, 4).any(dim=(2, 4)).float().mean(0)
    assert torch.allclose(share, torch.full((2, 2), 0.25), atol=0.03)


def test_block_size_must_divide_grid():
    with pytest.raises(ValueError, match="block_size=3"):
        draw("block", 0.5, (16, 16), block_size=3)
    with pytest.raises(ValueError, match="block_size"):
        BlockMasker(0.5, block_size=0)


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9, 0.3])
def test_crop_keeps_one_window_visible(ratio):
    grid = (16, 16)
    visible = 256 - num_masked(ratio, 256)
    side = math.isqrt(visible)
    window = side if side * side == visible else side + 1
    for row in draw("crop", ratio, grid, batch=16, seed=1):
        rows, cols = torch.nonzero(~row.reshape(grid), as_tuple=True)
        top, left = int(rows.min()), int(cols.min())
        assert int(rows.max()) - top < window and int(cols.max()) - left < window
        square, border = window_cells(side)
        cells = {(int(r) - top, int(c) - left) for r, c in zip(rows, cols)}
        assert {tuple(rc) for rc in square.tolist()} <= cells <= {tuple(rc) for rc in square.tolist() + border.tolist()}
        assert len(cells) == visible


def test_crop_window_position_is_uniform():
    masks = draw("crop", 0.75, (8, 8), batch=4000)  # a 4x4 window: 5x5 possible corners
    corner = torch.nonzero(~masks.reshape(4000, 8, 8))
    first = torch.zeros(4000, dtype=torch.long).scatter_reduce(0, corner[:, 0], corner[:, 1] * 8 + corner[:, 2],
                                                               "amin", include_self=False)
    counts = torch.bincount(first, minlength=64).reshape(8, 8)[:5, :5].float()
    assert counts.sum() == 4000 and counts.min() > 100  # each of 25 corners expected 160 times


def test_crop_window_cells():
    square, border = window_cells(2)
    assert square.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert border.tolist() == [[0, 2], [1, 2], [2, 0], [2, 1], [2, 2]]
    with pytest.raises(ValueError, match="raise the mask ratio"):
        CropMasker(0.05)(1, (4, 16), torch.Generator().manual_seed(0))


def test_none_masker_and_ratio_override():
    assert not draw("none", 0.0).any()
    masker = MASKERS.get("patch")(0.5)
    assert masker(2, (4, 4), torch.Generator().manual_seed(0), ratio=0.25).sum(1).tolist() == [4, 4]
