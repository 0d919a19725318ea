"""What every dataset provides to the trainer.

``dataset[i] -> (x, label)``: ``x`` is a float tensor (C, H, W) — pixels in [-1, 1], or
whatever the data transform expects (e.g. VAE moments) — and ``label`` an int (-1 when the
data has no classes). ``num_classes`` (0 = unconditional), ``channels`` and ``resolution``
describe it; the stage's data transform maps batches into the model's space.
"""
from __future__ import annotations

from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """Base class of mdreg datasets."""

    num_classes: int = 0
    channels: int = 3
    resolution: int = 0

    def describe(self) -> str:
        return f"{type(self).__name__}: {len(self)} images, {self.channels}x{self.resolution}x{self.resolution}, " \
               f"{self.num_classes or 'no'} classes"
