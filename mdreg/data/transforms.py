"""Data transforms: map a batch from the dataset's space into the model's space and back.

The trainer applies ``transform.encode(batch, generator)`` to every batch (after
augmentation) and samplers' outputs go through ``transform.decode(x)`` to become
pixels in [-1, 1] for grids, PNGs and FID. ``identity`` is pixel-space training.
"""
from __future__ import annotations

import torch

from mdreg.registry import TRANSFORMS


@TRANSFORMS.register("identity", aliases=("pixels",))
class Identity:
    """Pixel space: the model sees the images as they are."""

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def output_shape(self, channels: int, resolution: int) -> tuple[int, int]:
        """(channels, resolution) the model sees for data of this size."""
        return channels, resolution

    def __repr__(self) -> str:
        return "Identity()"
