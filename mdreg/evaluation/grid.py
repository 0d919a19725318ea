"""Sample grids: a batch of images in [-1, 1] written as one PNG."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from mdreg.config.serialize import atomic_write


MIN_CELL = 64  # smaller images are enlarged (nearest neighbour) so that a grid is viewable


def image_grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (3, H', W') grid in [0, 1] (2-pixel padding); images
    smaller than 64 pixels are enlarged by an integer factor, pixels kept sharp."""
    images = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    factor = max(1, MIN_CELL // max(images.shape[-2:]))
    if factor > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> torch.Tensor:
    """Write the grid PNG atomically (:func:`~mdreg.config.serialize.atomic_write`: a crash
    leaves no half PNG, a full disk raises ``OutOfSpace`` naming the folder); returns the grid."""
    grid = image_grid(images, nrow)
    atomic_write(path, lambda fh: save_image(grid, fh, format="png"), binary=True)
    return grid
