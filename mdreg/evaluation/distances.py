"""Distances between two point clouds, for low-dimensional toys (MaskDM Fig. 1, sec. 3.1).

* :func:`sliced_wasserstein`: SW_p = (E_theta W_p^p(theta.X, theta.Y))^(1/p) over random
  unit directions theta (Bonneel et al. 2015); each 1-D W_p compares quantiles, so the
  two sets may differ in size. Exact in expectation; ``projections`` random directions.
* :func:`mmd`: squared maximum mean discrepancy with a sum of Gaussian kernels
  k(x, y) = sum_h exp(-|x - y|^2 / (2 h^2)) (Gretton et al. 2012), the unbiased estimate
  (it can be slightly negative when the two sets come from one distribution).

Both are deterministic given ``seed`` and run in float64.
"""
from __future__ import annotations

import torch

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
