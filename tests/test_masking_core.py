"""Patch-wise masker: exact counts, determinism from the generator, visible indices."""
import pytest
import torch

from mdreg.masking import NoMasker, PatchMasker, num_masked, visible_ids


@pytest.mark.parametrize("ratio,n,expected", [(0.5, 64, 32), (0.9, 10, 9), (0.29, 100, 29), (0.7, 64, 44), (0.0, 5, 0),
                                              (1.0, 5, 5)])
def test_num_masked_rounds_down_robustly(ratio, n, expected):
    assert num_masked(ratio, n) == expected


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_patch_masker_hides_exactly_floor_ratio_n_per_sample(ratio):
    mask = PatchMasker(ratio)(8, (8, 8), torch.Generator().manual_seed(0))
    assert mask.shape == (8, 64) and mask.dtype == torch.bool
    assert (mask.sum(1) == num_masked(ratio, 64)).all()
    assert len({tuple(row.tolist()) for row in mask}) == 8  # independent per sample


def test_same_generator_state_same_mask():
    a = PatchMasker(0.5)(4, (4, 4), torch.Generator().manual_seed(3))
    b = PatchMasker(0.5)(4, (4, 4), torch.Generator().manual_seed(3))
    c = PatchMasker(0.5)(4, (4, 4), torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_visible_ids_are_the_unmasked_positions():
    mask = PatchMasker(0.25)(3, (4, 4), torch.Generator().manual_seed(0))
    ids = visible_ids(mask)
    assert ids.shape == (3, 12)
    for row, m in zip(ids, mask):
        assert sorted(row.tolist()) == row.tolist() and not m[row].any()


def test_none_masker_and_bad_ratio():
    assert not NoMasker()(2, (2, 2)).any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PatchMasker(1.2)
