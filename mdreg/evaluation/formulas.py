"""Sample-quality formulas: on Inception (or other) features FID, sFID, IS, precision/recall and
KID; on point clouds sliced Wasserstein and MMD.

Pure functions of feature arrays (no network here; mdreg/evaluation/inception.py makes
the features). Each follows the implementation the published numbers came from:

* :func:`frechet_distance` (FID, Heusel et al. 2017; sFID, Nash et al. 2021, is the same
  distance on spatial features): ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2)``.
  The last trace is computed as the sum of square roots of the eigenvalues of ``A S2 A``
  with ``A = S1^(1/2)``: symmetric PSD, so real and non-negative, the same value as
  ADM's/TTUR's ``scipy.linalg.sqrtm(S1 S2)`` without its complex round-off;
  :func:`frechet_distance_to` takes the features of one side, for fewer samples than dims.
* :func:`inception_score` (Salimans et al. 2016): ``exp E_x KL(p(y|x) || p(y))`` per
  split, averaged over splits. ADM's evaluator (guided-diffusion evaluations/evaluator.py,
  ``compute_inception_score``) cuts the samples into consecutive splits of 5000, so
  50k samples give 10 splits; the softmax is over the 1008 logits ``pool3 @ W`` of the
  TF graph's ``softmax/logits/MatMul`` (no bias).
* :func:`precision_recall` (Kynkäänniemi et al. 2019, "improved precision and recall"):
  each point's ball reaches its k-th nearest neighbour in its own set (k = 3, ADM's and
  the paper's default); precision = fraction of samples inside the union of reference
  balls, recall = fraction of reference points inside the union of sample balls (ADM's
  ``ManifoldEstimator``; ``<=`` on the ball's edge as there).
* :func:`kernel_inception_distance` (Bińkowski et al. 2018): unbiased MMD^2 with the
  kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (100 subsets of
  1000, torch-fidelity's and clean-fid's defaults; subsets are drawn like
  torch-fidelity's ``kid_features_to_metric`` with ``rng_seed``, so both give one value).

Distances and kernels run in float64 (ADM computes the P/R distances in float16 when
finite, which can move points on a ball's edge; see docs/evaluation.md).

Point clouds, for low-dimensional toys (MaskDM Fig. 1, sec. 3.1):

* :func:`sliced_wasserstein`: SW_p = (E_theta W_p^p(theta.X, theta.Y))^(1/p) over random
  unit directions theta (Bonneel et al. 2015); each 1-D W_p compares quantiles, so the
  two sets may differ in size. Exact in expectation; ``projections`` random directions.
* :func:`mmd`: squared maximum mean discrepancy with a sum of Gaussian kernels
  k(x, y) = sum_h exp(-|x - y|^2 / (2 h^2)) (Gretton et al. 2012), the unbiased estimate
  (it can be slightly negative when the two sets come from one distribution).

Both are deterministic given ``seed`` and run in float64.
"""
from __future__ import annotations

import numpy as np
import torch

from mdreg.errors import UserError


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov``, N - 1 normalised, as ADM/TTUR) of (N, D) features."""
    features = np.asarray(features, np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise UserError(f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance_to(features, mu2, sigma2) -> float:
    """Fréchet distance of (N, D) features' Gaussian to N(mu2, sigma2). With N <= D the
    trace term comes from the N x N matrix ``Xc S2 Xc^T / (N - 1)`` (Xc: centred features),
    whose non-zero eigenvalues are those of ``S1 S2`` (eig(AB) = eig(BA)): milliseconds
    instead of two D x D eigen-decompositions for small sample sets."""
    x = np.asarray(features, np.float64)
    n = len(x)
    if n < 2:
        raise UserError(f"FID needs at least 2 feature vectors, got {n}")
    if n > x.shape[1]:
        return frechet_distance(*gaussian_stats(x), mu2, sigma2)
    mu1, mu2, s2 = x.mean(0), np.asarray(mu2, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s2.shape != (len(mu1), len(mu1)):
        raise UserError(f"statistics differ in shape: features {x.shape[1:]} vs mu {mu2.shape}, sigma {s2.shape}")
    xc = x - mu1
    inner = xc @ s2 @ xc.T / (n - 1)
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + (xc * xc).sum() / (n - 1) + np.trace(s2) - 2 * tr_covmean)


def inception_score(logits, split_size: int = 5000) -> tuple[float, int]:
    """(IS, number of splits) of (N, C) logits: consecutive splits of ``split_size``
    (the last may be shorter), as ADM's evaluator."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if logits.ndim != 2 or len(logits) == 0:
        raise UserError(f"inception score needs (N, classes) logits with N >= 1, got shape {tuple(logits.shape)}")
    if split_size < 1:
        raise UserError(f"inception score split size {split_size}: must be >= 1")
    scores = []
    for part in logits.split(split_size):
        log_p = part.log_softmax(1)
        log_marginal = log_p.exp().mean(0).log()
        kl = (log_p.exp() * (log_p - log_marginal)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), len(scores)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances |a_i|^2 - 2 a_i.b_j + |b_j|^2, clamped at 0."""
    return (a.pow(2).sum(1)[:, None] - 2 * a @ b.T + b.pow(2).sum(1)[None]).clamp_min_(0)


def knn_radii(features: torch.Tensor, k: int = 3, block: int = 4096) -> torch.Tensor:
    """Squared distance of each point to its k-th nearest other point (self excluded)."""
    if len(features) <= k:
        raise UserError(f"precision/recall with k={k} needs more than {k} points per set, got {len(features)}")
    return torch.cat([_squared_distances(rows, features).kthvalue(k + 1, dim=1).values
                      for rows in features.split(block)])


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = 4096) -> float:
    """Fraction of ``points`` within (<=) the ball of at least one centre."""
    inside = [(_squared_distances(rows, centres) <= radii[None]).any(1) for rows in points.split(block)]
    return float(torch.cat(inside).double().mean())


def precision_recall(reference, samples, k: int = 3, device="cpu") -> tuple[float, float]:
    """Improved precision and recall of ``samples`` against ``reference`` (both (N, D))."""
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float64, device=device)
    gen = torch.as_tensor(np.asarray(samples), dtype=torch.float64, device=device)
    if ref.shape[1:] != gen.shape[1:]:
        raise UserError(f"precision/recall features differ in width: reference {tuple(ref.shape)}, "
                        f"samples {tuple(gen.shape)}")
    radii_ref, radii_gen = knn_radii(ref, k), knn_radii(gen, k)
    return _coverage(gen, ref, radii_ref), _coverage(ref, gen, radii_gen)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets with k(a, b) = (a.b / d + 1)^3 (Bińkowski et al.)."""
    m, d = len(x), x.shape[1]
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off_diagonal = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return float(off_diagonal / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(samples, reference, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 2020) -> tuple[float, float, int]:
    """(KID mean, std over subsets, subset size used): ``subset_size`` is capped by the
    smaller set (as clean-fid); each subset draws samples, then reference, without
    replacement from ``np.random.RandomState(seed)`` (torch-fidelity's order)."""
    x, y = np.asarray(samples, np.float64), np.asarray(reference, np.float64)
    if x.shape[1:] != y.shape[1:]:
        raise UserError(f"KID features differ in width: samples {x.shape}, reference {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2 or subsets < 1:
        raise UserError(f"KID needs at least 2 samples and 2 reference images and >= 1 subset "
                        f"(got {len(x)}, {len(y)}, {subsets} subsets)")
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        values.append(polynomial_mmd2(xs, ys))
    return float(np.mean(values)), float(np.std(values)), m


DEFAULT_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5)  # for data scaled into [-1, 1]


def _flat(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).to(torch.float64)
    return x.reshape(x.shape[0], -1)


def _quantiles(values: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function of each column of ``values`` (N, P) at ``levels`` (Q,)."""
    ordered = values.sort(dim=0).values
    index = (levels * ordered.shape[0]).floor().clamp(max=ordered.shape[0] - 1).long()
    return ordered[index]


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 512, p: int = 2,
                       seed: int = 0) -> float:
    """Sliced p-Wasserstein distance between point sets ``x`` (N, D) and ``y`` (M, D)."""
    x, y = _flat(x), _flat(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"point sets of different dimension: {x.shape[1]} and {y.shape[1]}")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    levels = (torch.arange(max(x.shape[0], y.shape[0]), dtype=torch.float64) + 0.5) / max(x.shape[0], y.shape[0])
    gap = (_quantiles(x @ theta, levels) - _quantiles(y @ theta, levels)).abs() ** p
    return float(gap.mean() ** (1.0 / p))


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] = DEFAULT_BANDWIDTHS) -> float:
    """Unbiased squared MMD between ``x`` (N, D) and ``y`` (M, D) with a sum of Gaussian kernels."""
    x, y = _flat(x), _flat(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"point sets of different dimension: {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("mmd needs at least two points in each set")

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())
