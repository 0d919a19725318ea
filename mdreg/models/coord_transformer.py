"""A transformer over coordinates, for MaskDM's Figure-1 toy (sec. 3.1 and eq. 3).

A point x0 = (x^1, ..., x^D) is D tokens: token i is a shared linear embedding of the
scalar x^i plus a learned position embedding h_i of coordinate i, which is eq. 3's
``x0 . M + H . M``: the position embeddings tell the network WHICH coordinates it sees,
so one network learns every marginal p(x^tau_1, ..., x^tau_S) during masked pre-training.
A time token (sinusoidal embedding of t, an MLP and its own position) joins them; a few
pre-norm transformer blocks mix the tokens and a linear head reads epsilon for each
coordinate token.

Inputs are (B, 1, 1, D) as the toy datasets serve them (see :mod:`mdreg.data.toy`):
``grid_size = (1, D)`` and ``patch_size = 1``, so the trainer's maskers draw masks over
coordinates and MDSM averages its loss over the visible ones. With ``ids_keep`` (B, K)
only those K coordinate tokens enter the blocks (the others are not computed) and the
output is zero at the masked coordinates.
"""
from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import nn

from mdreg.models.checks import check_divides, check_positive, check_ratio
from mdreg.models.layers import gather_tokens, scatter_tokens, timestep_embedding
from mdreg.registry import BACKBONES


@BACKBONES.register("coord_transformer")
class CoordTransformer(nn.Module):
    """Each coordinate is a token (value embedding + learned position); drops masked coordinates."""

    num_prefix_tokens = 0  # ``pos_embed`` holds coordinate positions only (the time token has ``time_pos``)

    def __init__(self, num_coords: int = 2, embed_dim: int = 64, depth: int = 4, num_heads: int = 4,
                 mlp_ratio: float = 4.0):
        super().__init__()
        check_positive(num_coords=num_coords, embed_dim=embed_dim, depth=depth, num_heads=num_heads)
        check_ratio("mlp_ratio", mlp_ratio)
        check_divides("num_heads", num_heads, "embed_dim", embed_dim)
        self.num_coords, self.embed_dim = num_coords, embed_dim
        self.in_chans, self.img_size, self.patch_size, self.num_classes = 1, num_coords, 1, 0
        self.grid_size, self.input_hw, self.num_patches = (1, num_coords), (1, num_coords), num_coords
        self.value_embed = nn.Linear(1, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_coords, embed_dim))
        self.time_pos = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.time_embed = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                        nn.Linear(4 * embed_dim, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, 1)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.time_pos, std=0.02)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Epsilon for points ``x`` (B, 1, 1, D) at timesteps ``t`` (B,); ``ids_keep`` (B, K) visible coordinates."""
        if x.shape[1:] != (1, 1, self.num_coords):
            raise ValueError(f"coord_transformer expects points shaped (B, 1, 1, {self.num_coords}), got "
                             f"{tuple(x.shape)}")
        values = x.reshape(x.shape[0], self.num_coords, 1)  # (B, D, 1): one scalar per coordinate token
        tokens = self.value_embed(values) + self.pos_embed  # (B, D, E)
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)  # (B, K, E)
        time = self.time_embed(timestep_embedding(t, self.embed_dim)).unsqueeze(1) + self.time_pos  # (B, 1, E)
        h = torch.cat([time.to(tokens.dtype), tokens], dim=1)  # (B, 1 + K, E)
        for block in self.blocks:
            h = block(h)  # (B, 1 + K, E)
        out = self.head(self.norm(h[:, 1:]))  # (B, K, 1)
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_coords)  # (B, D, 1), zero at masked coordinates
        return out.reshape(x.shape[0], 1, 1, self.num_coords)  # (B, 1, 1, D)
