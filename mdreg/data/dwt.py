"""The Haar DWT as a data transform (MaskDM sec. 4.3, appendix C)."""
from __future__ import annotations

import numpy as np
import torch

from mdreg.registry import TRANSFORMS


@TRANSFORMS.register("haar_dwt", aliases=("dwt",))
class HaarDWT:
    """One-level 2-D Haar DWT (MaskDM sec. 4.3, appendix C) with pywavelets, batched.

    ``encode``: images (B, C, H, W) in [-1, 1] -> (B, 4C, H/2, W/2) laid out as
    ``[low band (C) | horizontal (C) | vertical (C) | diagonal (C)]``: low first, then the
    three high bands concatenated along channels (appendix C; the layout ``uvit_dwt`` expects).
    ``decode`` inverts it exactly (``pywt.idwt2``).

    Scaling: pywt's Haar filters are orthonormal, so its low band is 2 x the 2x2 mean and
    every band lies in [-2, 2] for images in [-1, 1]. ``scale`` multiplies all coefficients;
    the default 0.5 makes the low band the 2x2 mean and keeps every band in [-1, 1], so the
    samplers' usual x0 clipping to [-1, 1] stays valid. ``scale=1`` gives pywt's coefficients
    as maskdm feeds them (then clip DDIM/DDPM at 2, or not at all).
    """

    def __init__(self, scale: float = 0.5):
        if scale <= 0:
            raise ValueError(f"haar_dwt: scale must be > 0, got {scale}")
        self.scale = scale

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        import pywt

        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"haar_dwt needs even image sides, got {tuple(x.shape[-2:])}")
        low, (horizontal, vertical, diagonal) = pywt.dwt2(x.detach().float().cpu().numpy(), "haar", axes=(-2, -1))
        coeffs = torch.from_numpy(np.concatenate([low, horizontal, vertical, diagonal], axis=1))
        return (coeffs * self.scale).to(device=x.device, dtype=x.dtype)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        import pywt

        if x.shape[1] % 4:
            raise ValueError(f"haar_dwt.decode needs 4 x C channels (low + 3 high bands), got {x.shape[1]}")
        bands = (x.detach().float().cpu() / self.scale).numpy()
        low, horizontal, vertical, diagonal = bands.reshape(x.shape[0], 4, x.shape[1] // 4, *x.shape[2:]).swapaxes(0, 1)
        image = pywt.idwt2((low, (horizontal, vertical, diagonal)), "haar", axes=(-2, -1))
        return torch.from_numpy(np.ascontiguousarray(image)).to(device=x.device, dtype=x.dtype)

    def output_shape(self, channels: int, resolution: int) -> tuple[int, int]:
        """4 x the channels at half the resolution."""
        return 4 * channels, resolution // 2

    def __repr__(self) -> str:
        return f"HaarDWT(scale={self.scale})"
