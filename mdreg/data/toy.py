"""Point clouds of MaskDM's Figure 1 toy (sec. 3.1): a 2-D Swiss roll and a 3-D rose.

Each sample is one point x0 in R^D, laid out as a 1 x 1 x D "image" (channels 1, height
1, width D) so that patchifying with patch 1 gives one token per coordinate: the maskers,
the MDSM objective (eq. 4: "only the visible components") and the samplers then work on
coordinates exactly as they work on image patches. ``channels = 1`` and ``resolution = D``
match ``backbone:coord_transformer`` (``in_chans = 1``, ``img_size = D``); ``input_hw`` is
the true (1, D) shape for tools that build inputs. Points are deterministic from ``seed``.
Every set of one kind shares ONE fixed frame (centre and scale are constants of the
distribution, not of the sample), so training data and held-out references of any seed or
size are directly comparable; the points lie in [-1, 1] (up to rare noise outliers).

* ``swissroll`` (Fig. 1a): t ~ U[1.5 pi, 4.5 pi], (x, y) = (t cos t, t sin t) plus Gaussian
  noise of std ``noise`` (in the same units, before scaling) — scikit-learn's 2-D roll —
  divided by 4.5 pi + 3 x noise (the largest radius plus three noise standard deviations).
* ``rose`` (Fig. 1b/c): the paper does not give its formula; we use the widely circulated
  parametric rose-flower surface (a MATLAB/matplotlib demo): for u ~ U[0, 1] (position
  across a petal) and t ~ U[-2 pi, 15 pi] (angle along the spiral of petals),
  p = (pi/2) exp(-t / (8 pi)), h = 1 - (1 - mod(3.6 t, 2 pi) / pi)^4 / 2,
  y = 2 (u^2 - u)^2 sin p, r = h (u sin p + y cos p),
  point = (r cos t, r sin t, h (u cos p - y sin p)) — a 2-D surface of spiralling petals
  in 3-D; centred on its bounding box and divided by its largest coordinate, both measured
  once on a fixed sample of 200k points.
"""
from __future__ import annotations

import functools
import math

import torch

from mdreg.data.base import ImageDataset
from mdreg.registry import DATASETS


def swissroll_points(num_points: int, seed: int = 0, noise: float = 0.3) -> torch.Tensor:
    """(N, 2) raw Swiss-roll points (before scaling)."""
    g = torch.Generator().manual_seed(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(num_points, generator=g, dtype=torch.float64))
    points = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    return points + noise * torch.randn(num_points, 2, generator=g, dtype=torch.float64)


def rose_points(num_points: int, seed: int = 0) -> torch.Tensor:
    """(N, 3) raw rose-surface points (before centring and scaling)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(num_points, generator=g, dtype=torch.float64)
    t = -2 * math.pi + 17 * math.pi * torch.rand(num_points, generator=g, dtype=torch.float64)
    p = (math.pi / 2) * torch.exp(-t / (8 * math.pi))
    h = 1 - (1 - torch.remainder(3.6 * t, 2 * math.pi) / math.pi) ** 4 / 2
    y = 2 * (u ** 2 - u) ** 2 * torch.sin(p)
    r = h * (u * torch.sin(p) + y * torch.cos(p))
    return torch.stack([r * torch.cos(t), r * torch.sin(t), h * (u * torch.cos(p) - y * torch.sin(p))], dim=1)


@functools.lru_cache(maxsize=1)
def rose_frame() -> tuple[torch.Tensor, float]:
    """(centre, scale) of the rose, from a fixed sample of 200k points (seed 0)."""
    points = rose_points(200_000, seed=0)
    center = (points.amax(0) + points.amin(0)) / 2
    return center, float((points - center).abs().max())


class PointCloud(ImageDataset):
    """Base of the toy sets: points (N, D) in a fixed frame, served as (1, 1, D) tensors with label -1."""

    def __init__(self, points: torch.Tensor, center: torch.Tensor | float, scale: float):
        self.points = ((points - center) / scale).float()
        self.dim = self.points.shape[1]
        self.channels, self.resolution, self.input_hw = 1, self.dim, (1, self.dim)

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.points[index].view(1, 1, self.dim), -1


@DATASETS.register("swissroll", aliases=("swiss_roll",))
class SwissRoll(PointCloud):
    """2-D Swiss roll of MaskDM Fig. 1a, in a fixed frame (see the module docstring); deterministic from ``seed``."""

    def __init__(self, num_points: int = 20_000, seed: int = 0, noise: float = 0.3):
        if num_points < 1 or noise < 0:
            raise ValueError(f"swissroll needs num_points >= 1 and noise >= 0, got {num_points}, {noise}")
        super().__init__(swissroll_points(num_points, seed, noise), center=0.0, scale=4.5 * math.pi + 3 * noise)


@DATASETS.register("rose")
class Rose(PointCloud):
    """3-D rose-flower surface of MaskDM Fig. 1b/c (formula in the module docstring), fixed frame."""

    def __init__(self, num_points: int = 20_000, seed: int = 0):
        if num_points < 1:
            raise ValueError(f"rose needs num_points >= 1, got {num_points}")
        super().__init__(rose_points(num_points, seed), *rose_frame())
