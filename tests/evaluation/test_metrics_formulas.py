"""The metric formulas (mdreg/evaluation/formulas.py) against independent computations:
scipy/brute-force loops, cases with a known answer, and torch-fidelity's own metric
functions fed the identical feature arrays (torch-fidelity is in the ``test`` extra)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import torch
from scipy.spatial.distance import cdist

from mdreg.errors import UserError
from mdreg.evaluation.formulas import (frechet_distance, frechet_distance_to, gaussian_stats, inception_score, kernel_inception_distance, precision_recall)


def _direct_is(logits: np.ndarray) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))) with scipy's softmax and entropy (one split)."""
    p = scipy.special.softmax(logits, axis=1)
    marginal = p.mean(0)
    return float(np.exp(np.mean([scipy.stats.entropy(row, marginal) for row in p])))


def test_inception_score_known_values_and_adm_splits():
    assert inception_score(np.zeros((20, 1008)))[0] == pytest.approx(1.0, abs=1e-12)  # uniform: p(y|x) = p(y)
    k = 10
    confident = 100.0 * np.eye(k)[np.arange(50) % k]  # one-hot, balanced over k classes
    assert inception_score(confident)[0] == pytest.approx(k, rel=1e-9)
    assert inception_score(100.0 * np.eye(k)[np.arange(50) % 5])[0] == pytest.approx(5, rel=1e-9)  # 5 used
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((12, 7)) * 3
    assert inception_score(logits, split_size=12) == (pytest.approx(_direct_is(logits), rel=1e-10), 1)
    # ADM: consecutive splits of split_size, the last one shorter, averaged
    chunks = [logits[:5], logits[5:10], logits[10:]]
    value, splits = inception_score(logits, split_size=5)
    assert splits == 3 and value == pytest.approx(np.mean([_direct_is(c) for c in chunks]), rel=1e-10)
    with pytest.raises(UserError, match="logits"):
        inception_score(np.zeros((0, 5)))


def _brute_force_pr(ref, gen, k):
    """Precision/recall with scipy's Euclidean distances and explicit loops."""
    def radii(x):
        d = cdist(x, x)
        return np.array([np.sort(row)[k] for row in d])  # row includes the point itself at 0

    r_ref, r_gen = radii(ref), radii(gen)
    d = cdist(gen, ref)
    precision = np.mean([any(d[j, i] <= r_ref[i] for i in range(len(ref))) for j in range(len(gen))])
    recall = np.mean([any(d[j, i] <= r_gen[j] for j in range(len(gen))) for i in range(len(ref))])
    return precision, recall


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(1)
    ref, gen = rng.standard_normal((30, 5)), rng.standard_normal((40, 5)) * 1.3 + 0.4
    for k in (1, 3, 5):
        assert precision_recall(ref, gen, k) == pytest.approx(_brute_force_pr(ref, gen, k), abs=1e-12)


def test_precision_recall_k_nearest_ball_on_a_grid():
    """Reference 0..9 on a line: 3rd-neighbour radii are 3 at the ends, 2 inside, so the
    union of balls is [-3, 12]; points exactly on its edge count (ADM's ``<=``)."""
    ref = np.arange(10.0)[:, None]
    gen = np.array([-3.5, -3.0, 0.5, 11.0, 12.0, 12.5])[:, None]
    precision, recall = precision_recall(ref, gen, k=3)
    assert precision == pytest.approx(4 / 6) and recall == 1.0


def test_precision_recall_of_known_overlaps():
    rng = np.random.default_rng(2)
    same = precision_recall(rng.standard_normal((1500, 2)), rng.standard_normal((1500, 2)))
    assert min(same) > 0.95  # one distribution: nearly every point inside the other set's balls
    assert precision_recall(rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 100) == (0.0, 0.0)
    # U(0, 1) vs U(a, 1 + a): the balls shrink to the support, so both tend to the overlap 1 - a
    for shift in (0.2, 0.5):
        precision, recall = precision_recall(rng.uniform(0, 1, (3000, 1)), rng.uniform(shift, 1 + shift, (3000, 1)))
        assert precision == pytest.approx(1 - shift, abs=0.04) and recall == pytest.approx(1 - shift, abs=0.04)
    # half the samples far away: precision halves, recall stays (the other half covers the reference)
    ref = rng.standard_normal((1000, 2))
    gen = np.concatenate([rng.standard_normal((500, 2)), rng.standard_normal((500, 2)) + 100])
    precision, recall = precision_recall(ref, gen)
    assert precision == pytest.approx(0.5, abs=0.02) and recall > 0.95
    with pytest.raises(UserError, match="more than 3 points"):
        precision_recall(ref, gen[:3])


def _direct_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3 by explicit sums over pairs."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_mmd_and_vanishes_for_one_distribution():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.3
    mean, std, used = kernel_inception_distance(x, y, subsets=1, subset_size=12)
    assert used == 12 and std == 0 and mean == pytest.approx(_direct_mmd2(x, y), rel=1e-10)
    a, b = rng.standard_normal((200, 16)), rng.standard_normal((200, 16))
    same = kernel_inception_distance(a, b, subsets=20, subset_size=100)[0]
    shifted = kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=100)[0]
    assert abs(same) < 0.02 * shifted
    assert kernel_inception_distance(a, b[:50])[2] == 50  # subset size capped by the smaller set (clean-fid)
    with pytest.raises(UserError, match="at least 2"):
        kernel_inception_distance(a, b[:1])


def test_frechet_distance_of_feature_statistics_matches_scipy():
    rng = np.random.default_rng(4)
    (mu1, s1), (mu2, s2) = gaussian_stats(rng.standard_normal((50, 6))), gaussian_stats(rng.random((40, 6)))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("n", [5, 40])  # fewer samples than dims (N x N route), and more (D x D route)
def test_frechet_distance_to_features_matches_statistics_route(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 12)) @ rng.standard_normal((12, 12)) * 0.5 + 0.3
    b = rng.standard_normal((30, 12))
    mu2, s2 = gaussian_stats(b)
    mu1, s1 = gaussian_stats(x)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance_to(x, mu2, s2) == pytest.approx(expected, rel=1e-7)
    # rank-deficient S1: the D x D route sums square roots of ~1e-16 round-off eigenvalues (~1e-8 each)
    assert frechet_distance_to(x, mu2, s2) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-7)
    with pytest.raises(UserError, match="differ in shape"):
        frechet_distance_to(x, mu2[:3], s2[:3, :3])


def test_formulas_agree_with_torch_fidelity_on_identical_features():
    tf = pytest.importorskip("torch_fidelity", reason="torch-fidelity (test extra) cross-checks the formulas")
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    assert tf.__version__
    rng = np.random.default_rng(5)
    gen, ref = rng.standard_normal((120, 32)) * 1.1 + 0.2, rng.standard_normal((100, 32))
    gen_t, ref_t = torch.from_numpy(gen), torch.from_numpy(ref)
    fid_tf = fid_statistics_to_metric(fid_features_to_statistics(gen_t), fid_features_to_statistics(ref_t), False)
    assert frechet_distance(*gaussian_stats(gen), *gaussian_stats(ref)) == pytest.approx(
        fid_tf["frechet_inception_distance"], rel=1e-9)
    logits = rng.standard_normal((120, 50)) * 4
    isc = isc_features_to_metric(torch.from_numpy(logits), splits=3, shuffle=False)
    assert inception_score(logits, split_size=40)[0] == pytest.approx(isc["inception_score_mean"], rel=1e-10)
    prc = calculate_precision_recall_full(gen_t, ref_t, neighborhood=3)  # torch-fidelity: (generated, real)
    assert precision_recall(ref, gen, k=3) == pytest.approx(prc, abs=1e-6)  # its mean is float32; 1/N = 0.008
    kid = kid_features_to_metric(gen_t, ref_t, kid_subsets=7, kid_subset_size=50, rng_seed=11, verbose=False)
    mean, std, _ = kernel_inception_distance(gen, ref, subsets=7, subset_size=50, seed=11)
    assert (mean, std) == (pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-10),
                           pytest.approx(kid["kernel_inception_distance_std"], rel=1e-10))
