"""Gaussian tensors with random labels: inputs of a given shape without any data on disk.

For throughput benchmarks ("random latent inputs 4x32x32, 1000 classes") and smoke tests
of latent-space recipes. Item ``i`` is the same on every call (seeded by ``seed`` and ``i``).
"""
from __future__ import annotations

import torch

from mdreg.data.base import ImageDataset
from mdreg.registry import DATASETS


@DATASETS.register("random_tensors", aliases=("random",))
class RandomTensors(ImageDataset):
    """N(0, 1) tensors of shape (channels, resolution, resolution) with uniform labels."""

    def __init__(self, num_items: int = 1024, channels: int = 4, resolution: int = 32, num_classes: int = 0,
                 seed: int = 0):
        if num_items < 1 or channels < 1 or resolution < 1 or num_classes < 0:
            raise ValueError(f"need num_items, channels, resolution >= 1 and num_classes >= 0; got {num_items}, "
                             f"{channels}, {resolution}, {num_classes}")
        self.num_items, self.channels, self.resolution = num_items, channels, resolution
        self.num_classes, self.seed = num_classes, seed

    def __len__(self) -> int:
        return self.num_items

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        x = torch.randn(self.channels, self.resolution, self.resolution, generator=g)
        label = int(torch.randint(self.num_classes, (), generator=g)) if self.num_classes else -1
        return x, label
