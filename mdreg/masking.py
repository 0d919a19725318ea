"""Maskers (which patch tokens are hidden during masked training) and mask-ratio schedules.

A masker returns a boolean mask of shape (B, N) over the token grid, ``True`` = masked,
with the same number of masked tokens in every row so that the visible tokens form a
dense (B, K) index tensor (:func:`visible_ids`) that backbones gather. Randomness comes
only from the ``generator`` passed in, so a seeded run masks identically on resume.

Rounding: how many tokens a ratio r hides is the masker's ``rounding`` option, and
``masker.num_masked(ratio, n)`` is THE count (the trainer uses it to size the visible set):

* ``"mask_floor"`` (default): hide floor(r N) (MaskDiT sec. 2.2: "we randomly remove
  floor(rN) patches"; maskdm's patch masking, ``datasets/masking_generator.py``
  ``RandomMaskingGenerator``: ``num_mask = int(mask_ratio * num_patches)``);
* ``"keep_floor"``: keep int(N (1 - r)), i.e. hide N - int(N (1 - r)) (official MaskDiT,
  ``models/maskdit.py`` ``get_mask``/``mask_tokens``: ``len_keep = int(length * (1 -
  mask_ratio))``). It hides one token more than ``mask_floor`` whenever r N is not whole
  (MaskDiT's cosine unmasking schedule);
* ``"whole_blocks"`` (block masker): hide only whole blocks, floor(r N) // b^2 of them
  (maskdm ``RandomBlockMaskingGenerator``);
* ``"square_window"`` (crop masker): the visible window is the largest square of at most
  N - floor(r N) patches (maskdm's configs set the crop side: 15 / 11 / 5 on the 16x16
  grid for 10 / 50 / 90%, ``configs/ablation/.../crop/celeba_{10p,50p,90p}.yml``).
"""
from __future__ import annotations

import abc
import math

import torch
from einops import rearrange

from mdreg.registry import MASK_SCHEDULES, MASKERS
from mdreg.rng import rand


def num_masked(ratio: float, n: int) -> int:
    """floor(ratio * n), robust to float error (0.29 * 100 -> 29, not 28): the ``mask_floor`` rule.

    maskdm computes ``int(mask_ratio * num_patches)`` in plain floats, which agrees except where
    the product falls just below a whole number (28.999999999999996 for 0.29 * 100); none of
    MaskDM's ratios (0.1, 0.5, 0.7, 0.9 on 256 / 1024 / 4096 patches) is such a case."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    return min(n, int(math.floor(ratio * n + 1e-6)))


def num_masked_keep_floor(ratio: float, n: int) -> int:
    """n - int(n * (1 - ratio)): official MaskDiT keeps ``int(length * (1 - mask_ratio))`` tokens
    (``models/maskdit.py`` ``get_mask``), computed here with the same float expression so every
    ratio, float error included, gives the official count."""
    num_masked(ratio, 1)  # validates the range
    return n - int(n * (1.0 - ratio))


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
    """Base class: ``masker(batch, grid, generator, device, ratio=None) -> (B, N) bool``.

    ``rounding`` names the count rule (module docstring); :meth:`num_masked` applies it."""

    roundings: tuple[str, ...] = ("mask_floor", "keep_floor")

    def __init__(self, ratio: float = 0.5, rounding: str = "mask_floor"):
        num_masked(ratio, 1)  # validates the range
        if rounding not in self.roundings:
            raise ValueError(f"{type(self).__name__}: rounding={rounding!r} is not a rule of this masker; choose one "
                             f"of {', '.join(map(repr, self.roundings))} (see mdreg/masking.py)")
        self.ratio, self.rounding = float(ratio), rounding

    def num_masked(self, ratio: float, n: int) -> int:
        """How many of ``n`` tokens this masker hides at ``ratio``, by its ``rounding`` rule."""
        if self.rounding == "keep_floor":
            return num_masked_keep_floor(ratio, n)
        return num_masked(ratio, n)

    def __call__(self, batch: int, grid: tuple[int, int], generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", ratio: float | None = None) -> torch.Tensor:
        ratio = self.ratio if ratio is None else ratio
        n = grid[0] * grid[1]
        k = self.num_masked(ratio, n)
        if k == 0:
            return torch.zeros(batch, n, dtype=torch.bool, device=device)
        return self.sample(batch, grid, k, generator).to(device)

    @abc.abstractmethod
    def sample(self, batch: int, grid: tuple[int, int], k: int, generator: torch.Generator | None) -> torch.Tensor:
        """(B, N) bool mask with exactly ``k`` True per row, on the generator's device."""

    def __repr__(self) -> str:
        rounding = "" if self.rounding == "mask_floor" else f", rounding={self.rounding!r}"
        return f"{type(self).__name__}(ratio={self.ratio}{rounding})"


@MASKERS.register("none", aliases=("unmasked",))
class NoMasker(Masker):
    """No masking: every token is visible (denoising fine-tuning, MaskDM eq. 1)."""

    def __init__(self, ratio: float = 0.0):
        super().__init__(ratio)

    def num_masked(self, ratio, n):
        return 0

    def __call__(self, batch, grid, generator=None, device="cpu", ratio=None):
        return torch.zeros(batch, grid[0] * grid[1], dtype=torch.bool, device=device)

    def sample(self, batch, grid, k, generator):
        return torch.zeros(batch, grid[0] * grid[1], dtype=torch.bool, device=generator.device if generator else "cpu")


@MASKERS.register("patch", aliases=("random",))
class PatchMasker(Masker):
    """Patch-wise masking (MaskDM fig. 3a; MaskDiT sec. 3.1): ``num_masked`` patches (floor(ratio*N),
    or with ``rounding="keep_floor"`` N - int(N (1 - ratio)) as official MaskDiT) chosen uniformly
    without replacement, independently per sample (argsort of uniform noise, as both codes do)."""

    def sample(self, batch, grid, k, generator):
        n = grid[0] * grid[1]
        order = torch.argsort(rand((batch, n), generator), dim=1)
        mask = torch.zeros(batch, n, dtype=torch.bool, device=order.device)
        return mask.scatter(1, order[:, :k], True)


@MASKERS.register("block")
class BlockMasker(Masker):
    """Block-wise masking (MaskDM sec. 4.2, fig. 3a): hides squares of ``block_size`` x
    ``block_size`` patches (MaskDM uses 2, 4 and 8) on the block grid.

    Rounding: ``k // b^2`` whole blocks are chosen uniformly without replacement (k =
    ``num_masked``). With ``rounding="whole_blocks"`` that is all (k = b^2 (floor(ratio*N) //
    b^2), maskdm's ``RandomBlockMaskingGenerator``: ``int(mask_ratio * num_patches) //
    block_size**2`` blocks, so 10% of 256 patches in 4x4 blocks hides one block, 16 patches).
    With ``mask_floor`` / ``keep_floor`` the remaining ``k mod b^2`` patches are cells of one more
    randomly chosen block, drawn uniformly without replacement (not its first rows: filled in
    raster order, 90% of a 4x4 grid in 2x2 blocks never showed token rows 0 and 2), so exactly
    k patches are hidden: whole blocks plus at most one partial block. The block draw comes
    first from ``generator``, the cell draw second and only when a partial block exists, so
    ``whole_blocks`` masks are unchanged by it. The grid must be divisible by ``block_size``.
    """

    roundings = ("mask_floor", "keep_floor", "whole_blocks")

    def __init__(self, ratio: float = 0.5, block_size: int = 4, rounding: str = "mask_floor"):
        super().__init__(ratio, rounding)
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1 (patches per block side), got {block_size}")
        self.block_size = int(block_size)

    def num_masked(self, ratio, n):
        if self.rounding == "whole_blocks":
            cells = self.block_size ** 2
            return num_masked(ratio, n) // cells * cells
        return super().num_masked(ratio, n)

    def sample(self, batch, grid, k, generator):
        b = self.block_size
        if grid[0] % b or grid[1] % b:
            raise ValueError(f"block masker: the {grid[0]}x{grid[1]} token grid is not divisible by "
                             f"block_size={b}; choose a block_size that divides it")
        full, rest = divmod(k, b * b)
        rank = random_ranks(batch, (grid[0] // b) * (grid[1] // b), generator)
        blocks = (rank < full).unsqueeze(-1).expand(-1, -1, b * b)
        if rest:
            cells = random_ranks(batch, b * b, generator) < rest  # the partial block's cells, uniformly
            blocks = blocks | ((rank == full).unsqueeze(-1) & cells.unsqueeze(1))
        return rearrange(blocks, "n (hn wn) (hb wb) -> n (hn hb wn wb)", hn=grid[0] // b, hb=b)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", block_size={self.block_size})"


@MASKERS.register("crop", aliases=("cropping",))
class CropMasker(Masker):
    """Cropping (MaskDM sec. 4.2, fig. 3a): one square window of patches stays visible, at a
    uniformly random position; everything outside it is masked.

    Rounding: the visible count is V = N - ``num_masked``. With ``rounding="square_window"``
    the window is the largest square that fits, side floor(sqrt(N - floor(ratio * N))), which
    is how maskdm's configs choose their crop side (15 / 11 / 5 on a 16x16 grid for 10 / 50 /
    90% masking). Otherwise: if V is a square the window is sqrt(V) x sqrt(V); if not, the
    window side is S = ceil(sqrt(V)): its s x s square (s = floor(sqrt(V))) is visible, and
    V - s^2 of the 2s + 1 border cells (the column right of the square, the row below it),
    drawn uniformly without replacement — a square with a partial border on two sides. (A
    fixed border order, as before, never showed the grid's last row at 5 of 16 visible.)
    Draw order from ``generator``: window top, left, then the border cells if any.
    """

    roundings = ("mask_floor", "keep_floor", "square_window")

    def num_masked(self, ratio, n):
        if self.rounding == "square_window":
            return n - math.isqrt(n - num_masked(ratio, n)) ** 2
        return super().num_masked(ratio, n)

    def sample(self, batch, grid, k, generator):
        visible = grid[0] * grid[1] - k
        side = math.isqrt(visible)
        window = side if side * side == visible else side + 1
        if window > min(grid):
            raise ValueError(f"crop masker: {visible} visible patches need a {window}x{window} window, larger than "
                             f"the {grid[0]}x{grid[1]} grid; raise the mask ratio")
        top = (rand((batch,), generator) * (grid[0] - window + 1)).long().clamp(max=grid[0] - window)
        left = (rand((batch,), generator) * (grid[1] - window + 1)).long().clamp(max=grid[1] - window)
        square, border = window_cells(side)
        offsets = square.to(top.device).expand(batch, -1, -1)
        if visible > side * side:
            order = torch.argsort(rand((batch, len(border)), generator), dim=1)[:, :visible - side * side]
            offsets = torch.cat([offsets, border.to(top.device)[order.to(top.device)]], dim=1)
        rows = top[:, None] + offsets[..., 0]
        cols = left[:, None] + offsets[..., 1]
        mask = torch.ones(batch, grid[0] * grid[1], dtype=torch.bool, device=top.device)
        return mask.scatter(1, rows * grid[1] + cols, False)


def random_ranks(batch: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(B, n): a uniformly random permutation of 0 .. n-1 per row (ranks of uniform noise)."""
    return torch.argsort(torch.argsort(rand((batch, n), generator), dim=1), dim=1)


def window_cells(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell offsets (row, col) of a crop window: the side x side square (side^2, 2) and its
    2 side + 1 border cells (2 side + 1, 2), the column right of it then the row below it."""
    square = [(r, c) for r in range(side) for c in range(side)]
    border = [(r, side) for r in range(side)] + [(side, c) for c in range(side + 1)]
    return torch.tensor(square, dtype=torch.long).reshape(-1, 2), torch.tensor(border, dtype=torch.long)


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


@MASK_SCHEDULES.register("zero")
class ZeroRatio(MaskSchedule):
    """No masking at all (MaskDiT's zero-ratio unmasking tuning, sec. 2.2, for CFG)."""

    def __call__(self, step, total_steps, base_ratio):
        return 0.0


@MASK_SCHEDULES.register("linear")
class LinearRatio(MaskSchedule):
    """Linear decay r = base + (end_ratio - base) * i/n from the masker's ratio at step 0
    (i = step, n = total steps; like the cosine schedule, it reaches ``end_ratio`` at i = n)."""

    def __init__(self, end_ratio: float = 0.0):
        num_masked(end_ratio, 1)
        self.end_ratio = end_ratio

    def __call__(self, step, total_steps, base_ratio):
        return base_ratio + (self.end_ratio - base_ratio) * step / total_steps


@MASK_SCHEDULES.register("cosine")
class CosineRatio(MaskSchedule):
    """MaskDiT's cosine-ratio unmasking tuning (sec. 2.2): r = base * cos^power(pi/2 * i/n),
    i = step, n = total steps; MaskDiT uses base 0.5 (the masker's ratio) and power 4 (official
    ``train_utils/helper.py`` ``get_mask_ratio_fn("cosine4")``: 0.5 cos^4(pi x / 2), x = steps
    since the tuning started / ``max_num_steps``)."""

    def __init__(self, power: float = 4.0):
        if power <= 0:
            raise ValueError(f"cosine mask schedule: power must be > 0, got {power}")
        self.power = power

    def __call__(self, step, total_steps, base_ratio):
        return base_ratio * math.cos(math.pi / 2 * step / total_steps) ** self.power


@MASK_SCHEDULES.register("exponential")
class ExponentialRatio(MaskSchedule):
    """r = base * exp(-rate * i/n): a fast early drop with a long tail; the default rate 5
    ends at 0.7% of the base ratio."""

    def __init__(self, rate: float = 5.0):
        if rate <= 0:
            raise ValueError(f"exponential mask schedule: rate must be > 0, got {rate}")
        self.rate = rate

    def __call__(self, step, total_steps, base_ratio):
        return base_ratio * math.exp(-self.rate * step / total_steps)

