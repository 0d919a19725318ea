"""Maskers (which patch tokens are hidden during masked training) and mask-ratio schedules.

A masker returns a boolean mask of shape (B, N) over the token grid, ``True`` = masked,
with the same number of masked tokens in every row so that the visible tokens form a
dense (B, K) index tensor (:func:`visible_ids`) that backbones gather. Randomness comes
only from the ``generator`` passed in, so a seeded run masks identically on resume.

Rounding: every masker hides exactly ``floor(ratio * N)`` tokens (MaskDiT sec. 3.1:
"we randomly remove floor(rN) patches"); see each class for how its shape fits that count.
"""
from __future__ import annotations

import abc
import math

import torch

from mdreg.registry import MASK_SCHEDULES, MASKERS
from mdreg.rng import rand


def num_masked(ratio: float, n: int) -> int:
    """floor(ratio * n), robust to float error (0.29 * 100 -> 29, not 28)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    return min(n, int(math.floor(ratio * n + 1e-6)))


def visible_ids(mask: torch.Tensor, keep: int | None = None) -> torch.Tensor:
    """Indices (B, K) of the unmasked tokens of ``mask`` (B, N), ascending in each row.

    Pass ``keep`` (= N - masked count, known on the host) to skip the consistency check,
    which would synchronise with the GPU.
    """
    if keep is None:
        keep = int((~mask[0]).sum())
        if bool(((~mask).sum(1) != keep).any()):
            raise ValueError("every row of a mask must hide the same number of tokens")
    return torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :keep]


class Masker(abc.ABC):
    """Base class: ``masker(batch, grid, generator, device, ratio=None) -> (B, N) bool``."""

    def __init__(self, ratio: float = 0.5):
        num_masked(ratio, 1)  # validates the range
        self.ratio = float(ratio)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", ratio: float | None = None) -> torch.Tensor:
        ratio = self.ratio if ratio is None else ratio
        n = grid[0] * grid[1]
        k = num_masked(ratio, n)
        if k == 0:
            return torch.zeros(batch, n, dtype=torch.bool, device=device)
        return self.sample(batch, grid, k, generator).to(device)

    @abc.abstractmethod
    def sample(self, batch: int, grid: tuple[int, int], k: int, generator: torch.Generator | None) -> torch.Tensor:
        """(B, N) bool mask with exactly ``k`` True per row, on the generator's device."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ratio={self.ratio})"


@MASKERS.register("none", aliases=("unmasked",))
class NoMasker(Masker):
    """No masking: every token is visible (denoising fine-tuning, MaskDM eq. 1)."""

    def __init__(self, ratio: float = 0.0):
        super().__init__(ratio)

    def __call__(self, batch, grid, generator=None, device="cpu", ratio=None):
        return torch.zeros(batch, grid[0] * grid[1], dtype=torch.bool, device=device)

    def sample(self, batch, grid, k, generator):
        return torch.zeros(batch, grid[0] * grid[1], dtype=torch.bool, device=generator.device if generator else "cpu")


@MASKERS.register("patch", aliases=("random",))
class PatchMasker(Masker):
    """Patch-wise masking (MaskDM fig. 3a; MaskDiT sec. 3.1): floor(ratio*N) patches chosen
    uniformly without replacement, independently per sample."""

    def sample(self, batch, grid, k, generator):
        n = grid[0] * grid[1]
        order = torch.argsort(rand((batch, n), generator), dim=1)
        mask = torch.zeros(batch, n, dtype=torch.bool, device=order.device)
        return mask.scatter(1, order[:, :k], True)


class MaskSchedule(abc.ABC):
    """Base class: ``schedule(step, total_steps, base_ratio) -> ratio`` for this step."""

    @abc.abstractmethod
    def __call__(self, step: int, total_steps: int, base_ratio: float) -> float:
        """The mask ratio at 0-based ``step`` of a stage of ``total_steps`` steps."""


@MASK_SCHEDULES.register("constant")
class ConstantRatio(MaskSchedule):
    """The masker's own ratio at every step (MaskDM pre-training, MaskDiT main training)."""

    def __call__(self, step, total_steps, base_ratio):
        return base_ratio
