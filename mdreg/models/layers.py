"""Small functions shared by the backbones: token (un)patchifying, visible-token
gather/scatter, sinusoidal time and 2-D sin-cos position embeddings.

Patch order is row-major over the (h, w) grid and each patch is flattened as (p1, p2, C),
the layout used by U-ViT and DiT, so their checkpoints load unchanged. (Attention, MLP and
the plain pre-norm block come from timm.)
"""
from __future__ import annotations

import math

import torch
from einops import rearrange


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C), N = (H/p)(W/p) in row-major order."""
    return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch, p2=patch)


def unpatchify(tokens: torch.Tensor, patch: int, channels: int, grid: tuple[int, int]) -> torch.Tensor:
    """(B, N, p*p*C) -> (B, C, H, W); inverse of :func:`patchify`."""
    return rearrange(tokens, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=grid[0], w=grid[1], p1=patch, p2=patch,
                     c=channels)


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Select tokens ``ids`` (B, K) from (B, N, D) -> (B, K, D)."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def scatter_tokens(tokens: torch.Tensor, ids: torch.Tensor, length: int, fill: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """Put (B, K, D) tokens back at positions ``ids`` of a length-``length`` sequence; the
    other positions hold ``fill`` (broadcast, e.g. a learned mask token) or zeros."""
    b, _, d = tokens.shape
    if fill is None:
        out = tokens.new_zeros(b, length, d)
    else:
        out = fill.to(tokens.dtype).expand(b, length, d).clone()
    return out.scatter(1, ids.unsqueeze(-1).expand(-1, -1, d), tokens)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, flip: bool = False) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, (B,) -> (B, dim).

    Layout ``[cos | sin]`` (U-ViT, DiT, ADM); ``flip=True`` gives ``[sin | cos]``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)] if flip else [torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """1-D sin-cos embedding (M,) -> (M, dim) laid out ``[sin | cos]``, computed in float64."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d_pos_embed(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE / DiT formula), (H*W, dim) in float32.

    The first half of the channels encodes the column (x) coordinate and the second half
    the row (y), each as ``[sin | cos]``; tokens are row-major. Computed in float64 and
    cast, like the reference implementation, so DiT/MaskDiT checkpoints match exactly.
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embeddings need dim divisible by 4, got {dim}")
    ys, xs = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64), torch.arange(grid[1], dtype=torch.float64),
                            indexing="ij")
    return torch.cat([sincos_1d(dim // 2, xs), sincos_1d(dim // 2, ys)], dim=1).float()
