"""The Haar DWT as a data transform (MaskDM sec. 4.3, appendix C)."""
from __future__ import annotations

import numpy as np
import torch

from mdreg.registry import TRANSFORMS

BACKENDS = ("auto", "pywt", "torch")


def _haar_analysis(x: torch.Tensor) -> torch.Tensor:
    """pywt.dwt2(x, "haar") for even sides, in torch: each 2x2 block [[a, b], [c, d]] gives
    low (a+b+c+d)/2, horizontal (a+b-c-d)/2, vertical (a-b+c-d)/2, diagonal (a-b-c+d)/2."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    top, bottom, left_minus_right_top, left_minus_right_bottom = a + b, c + d, a - b, c - d
    return torch.cat([top + bottom, top - bottom, left_minus_right_top + left_minus_right_bottom,
                      left_minus_right_top - left_minus_right_bottom], dim=1) * 0.5


def _haar_synthesis(low: torch.Tensor, horizontal: torch.Tensor, vertical: torch.Tensor,
                    diagonal: torch.Tensor) -> torch.Tensor:
    """pywt.idwt2 for the Haar wavelet: the exact inverse of :func:`_haar_analysis`."""
    sum_lh, diff_lh, sum_vd, diff_vd = low + horizontal, low - horizontal, vertical + diagonal, vertical - diagonal
    out = low.new_empty(*low.shape[:-2], 2 * low.shape[-2], 2 * low.shape[-1])
    out[..., 0::2, 0::2] = (sum_lh + sum_vd) * 0.5
    out[..., 0::2, 1::2] = (sum_lh - sum_vd) * 0.5
    out[..., 1::2, 0::2] = (diff_lh + diff_vd) * 0.5
    out[..., 1::2, 1::2] = (diff_lh - diff_vd) * 0.5
    return out


@TRANSFORMS.register("haar_dwt", aliases=("dwt",))
class HaarDWT:
    """One-level 2-D Haar DWT (MaskDM sec. 4.3, appendix C), batched.

    ``encode``: images (B, C, H, W) in [-1, 1] -> (B, 4C, H/2, W/2) laid out as
    ``[low band (C) | horizontal (C) | vertical (C) | diagonal (C)]``: low first, then the
    three high bands concatenated along channels (appendix C; the layout ``uvit_dwt`` expects).
    ``decode`` inverts it exactly (``pywt.idwt2``).

    Scaling: pywt's Haar filters are orthonormal, so its low band is 2 x the 2x2 mean and
    every band lies in [-2, 2] for images in [-1, 1]. ``scale`` multiplies all coefficients;
    the default 0.5 makes the low band the 2x2 mean and keeps every band in [-1, 1], so the
    samplers' usual x0 clipping to [-1, 1] stays valid. ``scale=1`` gives pywt's coefficients
    as maskdm feeds them (then clip DDIM/DDPM at 2, or not at all).

    ``backend``: ``pywt`` runs pywavelets (the reference) on the host; ``torch`` computes the
    same sums and differences on the batch's device, so a GPU batch is not copied to the
    host and back every step; ``auto`` (default) takes pywt for CPU batches and torch
    otherwise. The two agree to float32 rounding (tests/data/test_haar_dwt.py).
    """

    def __init__(self, scale: float = 0.5, backend: str = "auto"):
        if scale <= 0:
            raise ValueError(f"haar_dwt: scale must be > 0, got {scale}")
        if backend not in BACKENDS:
            raise ValueError(f"haar_dwt: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.scale, self.backend = scale, backend

    def _uses_pywt(self, x: torch.Tensor) -> bool:
        return self.backend == "pywt" or (self.backend == "auto" and x.device.type == "cpu")

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"haar_dwt needs even image sides, got {tuple(x.shape[-2:])}")
        if not self._uses_pywt(x):
            return (_haar_analysis(x.detach().float()) * self.scale).to(x.dtype)
        import pywt

        low, (horizontal, vertical, diagonal) = pywt.dwt2(x.detach().float().cpu().numpy(), "haar", axes=(-2, -1))
        coeffs = torch.from_numpy(np.concatenate([low, horizontal, vertical, diagonal], axis=1))
        return (coeffs * self.scale).to(device=x.device, dtype=x.dtype)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 4:
            raise ValueError(f"haar_dwt.decode needs 4 x C channels (low + 3 high bands), got {x.shape[1]}")
        bands = x.detach().float() / self.scale
        low, horizontal, vertical, diagonal = bands.reshape(x.shape[0], 4, x.shape[1] // 4, *x.shape[2:]).unbind(1)
        if not self._uses_pywt(x):
            return _haar_synthesis(low, horizontal, vertical, diagonal).to(x.dtype)
        import pywt

        low, horizontal, vertical, diagonal = (band.cpu().numpy() for band in (low, horizontal, vertical, diagonal))
        image = pywt.idwt2((low, (horizontal, vertical, diagonal)), "haar", axes=(-2, -1))
        return torch.from_numpy(np.ascontiguousarray(image)).to(device=x.device, dtype=x.dtype)

    def output_shape(self, channels: int, resolution: int) -> tuple[int, int]:
        """4 x the channels at half the resolution."""
        return 4 * channels, resolution // 2

    def __repr__(self) -> str:
        return f"HaarDWT(scale={self.scale}, backend={self.backend!r})"
