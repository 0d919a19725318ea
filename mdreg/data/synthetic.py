"""A small image dataset that mdreg generates itself: no downloads, same pixels from the same seed.

Each image is a flat background with one or two filled shapes (disc, square, triangle,
ring) of varying colour, size and position, lightly shaded so that the images are not
piecewise constant. The label of an image is the kind of its (first) shape, so the set
also serves class-conditional tests. Pixels are in [-1, 1], shape (3, R, R).
"""
from __future__ import annotations

import functools
import random

import torch

from mdreg.data.base import ImageDataset
from mdreg.registry import DATASETS

SHAPES = ("disc", "square", "triangle", "ring")
PALETTE = torch.tensor([  # saturated foreground colours (RGB in [0, 1])
    [0.90, 0.15, 0.15], [0.15, 0.65, 0.20], [0.15, 0.35, 0.90], [0.95, 0.80, 0.10],
    [0.85, 0.35, 0.85], [0.10, 0.80, 0.85], [0.95, 0.55, 0.10], [0.95, 0.95, 0.95]])
BACKGROUNDS = torch.tensor([[0.08, 0.08, 0.12], [0.20, 0.22, 0.30], [0.85, 0.85, 0.80], [0.30, 0.18, 0.12]])


@functools.lru_cache(maxsize=8)
def _grid(res: int) -> tuple[torch.Tensor, torch.Tensor]:
    coords = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    return torch.meshgrid(coords, coords, indexing="ij")


def _shape_mask(kind: int, cx: float, cy: float, size: float, res: int) -> torch.Tensor:
    """Soft (anti-aliased) coverage in [0, 1] of one shape on a res x res grid, from the
    signed distance ``d`` to its outline (positive inside)."""
    yy, xx = _grid(res)
    dx, dy = xx - cx, yy - cy
    edge = 1.5 / res
    if SHAPES[kind] == "disc":
        d = size - (dx ** 2 + dy ** 2).sqrt()
    elif SHAPES[kind] == "square":
        d = size * 0.85 - torch.maximum(dx.abs(), dy.abs())
    elif SHAPES[kind] == "triangle":  # pointing up, circumradius `size` (y grows downwards)
        d = size * 0.5 - torch.maximum(dy, torch.maximum(0.866 * dx - 0.5 * dy, -0.866 * dx - 0.5 * dy))
    else:  # ring
        r = (dx ** 2 + dy ** 2).sqrt()
        d = torch.minimum(size - r, r - size * 0.55)
    return (d / edge + 0.5).clamp(0, 1)


def render(index: int, seed: int, res: int, max_shapes: int = 2, size_range: tuple[float, float] = (0.14, 0.30)
           ) -> tuple[torch.Tensor, int]:
    """Image ``index`` of the set with ``seed``: (3, res, res) in [-1, 1] and its label.
    ``size_range`` bounds a shape's radius as a fraction of the image side."""
    rng = random.Random(seed * 1_000_003 + index)
    u = rng.random
    bg = BACKGROUNDS[rng.randrange(len(BACKGROUNDS))]
    shade = 1.0 + 0.15 * (_grid(res)[1] - 0.5) * (1 if u() < 0.5 else -1)  # gentle horizontal gradient
    img = bg[:, None, None] * shade[None]
    label = -1
    for _ in range(1 + sum(u() < 0.35 for _ in range(max_shapes - 1))):
        kind = rng.randrange(len(SHAPES))
        label = kind if label < 0 else label
        size = size_range[0] + (size_range[1] - size_range[0]) * u()
        cx, cy = size + (1 - 2 * size) * u(), size + (1 - 2 * size) * u()
        colour = PALETTE[rng.randrange(len(PALETTE))]
        cover = _shape_mask(kind, cx, cy, size, res)
        img = img * (1 - cover) + colour[:, None, None] * cover
    return img.clamp(0, 1) * 2 - 1, label


@DATASETS.register("shapes", aliases=("synthetic_shapes",))
class Shapes(ImageDataset):
    """Synthetic RGB shapes (disc/square/triangle/ring on flat backgrounds), deterministic from ``seed``."""

    num_classes = len(SHAPES)

    def __init__(self, num_images: int = 4096, resolution: int = 32, seed: int = 0, max_shapes: int = 2,
                 size_range: tuple[float, float] = (0.14, 0.30)):
        if num_images < 1 or resolution < 8 or max_shapes < 1:
            raise ValueError(f"need num_images >= 1, resolution >= 8 and max_shapes >= 1, got {num_images}, "
                             f"{resolution}, {max_shapes}")
        if not 0 < size_range[0] <= size_range[1] <= 0.5:
            raise ValueError(f"size_range must satisfy 0 < low <= high <= 0.5, got {size_range}")
        self.num_images, self.resolution, self.seed = num_images, resolution, seed
        self.channels = 3
        size_range = (float(size_range[0]), float(size_range[1]))
        self.max_shapes, self.size_range = max_shapes, size_range  # what the shape metric renders
        images, labels = zip(*(render(i, seed, resolution, max_shapes, size_range) for i in range(num_images)))
        self.images = torch.stack(images)
        self.labels = torch.tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])
