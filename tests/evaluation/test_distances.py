"""Sliced Wasserstein and MMD on cases with known answers."""
import math

import pytest
import torch

from mdreg.evaluation.formulas import mmd, sliced_wasserstein


def gaussian(n, d, seed, mean=0.0, std=1.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std + mean


def test_identical_sets_are_at_distance_zero():
    x = gaussian(500, 3, 0)
    assert sliced_wasserstein(x, x.clone()) == 0.0
    # the unbiased estimate assumes independent sets; for one set twice it is slightly below 0
    assert -0.05 < mmd(x, x.clone()) <= 0.0


def test_a_translation_moves_every_projection_by_its_shift():
    x, shift = gaussian(2000, 2, 1), torch.tensor([0.3, -0.4], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)  # the directions sliced_wasserstein draws with seed=5
    theta = torch.randn(2, 256, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    exact = float(((shift @ theta) ** 2).mean().sqrt())
    assert sliced_wasserstein(x, x + shift, projections=256, seed=5) == pytest.approx(exact, rel=1e-9)
    assert exact == pytest.approx(0.5 / math.sqrt(2), rel=0.1)  # E(theta.mu)^2 = |mu|^2 / d


def test_one_dimensional_gaussians_of_different_scale():
    # W2(N(0,1), N(0,s^2)) = |1 - s| in one dimension, where slicing changes nothing
    x, y = gaussian(50_000, 1, 2), gaussian(50_000, 1, 3, std=1.5)
    assert sliced_wasserstein(x, y, projections=4) == pytest.approx(0.5, abs=0.03)


def test_mmd_matches_its_closed_form_for_shifted_gaussians():
    d, s, shift, h = 2, 0.3, torch.tensor([0.4, 0.0], dtype=torch.float64), (0.2, 0.5)
    x, y = gaussian(2000, d, 4, std=s), gaussian(2000, d, 5, std=s) + shift
    expected = sum(2 * (b * b / (b * b + 2 * s * s)) ** (d / 2)
                   * (1 - math.exp(-float(shift @ shift) / (2 * (b * b + 2 * s * s)))) for b in h)
    assert mmd(x, y, bandwidths=h) == pytest.approx(expected, rel=0.1)
    same = mmd(gaussian(2000, d, 6, std=s), gaussian(2000, d, 7, std=s), bandwidths=h)
    assert abs(same) < 0.05 * expected


def test_distances_grow_with_the_gap_and_check_dimensions():
    x = gaussian(1000, 2, 8)
    near, far = x + 0.1, x + 1.0
    assert sliced_wasserstein(x, near) < sliced_wasserstein(x, far)
    assert mmd(x, near) < mmd(x, far)
    with pytest.raises(ValueError, match="different dimension"):
        sliced_wasserstein(x, gaussian(10, 3, 9))
