"""U-ViT / MaskDM backbones (Bao et al. 2023; MaskDM, Lei et al. 2023, sec. 3.3 and appendix B).

Tokens are ``[label?, time, patches]`` with a learned position embedding. ``depth // 2`` in
blocks feed long skip connections to ``depth // 2`` out blocks around one mid block (U-ViT's
convention: ``depth=12`` builds 6 + 1 + 6 = 13 blocks, as in MaskDM's Table 4); the
head is LayerNorm + a single linear layer to ``p*p*C`` (MaskDM drops U-ViT's 3x3 conv,
which stays available as ``conv=True`` for U-ViT checkpoints).

Masked pre-training (MaskDM eq. 3): only the visible patch tokens enter the transformer
(position embeddings are added first, then masked tokens are dropped), so compute scales
with the number of visible tokens. Outputs at masked patches are zero; the MDSM objective
ignores them.
"""
from __future__ import annotations

import inspect

import torch
from timm.layers import PatchEmbed, trunc_normal_
from torch import nn

from mdreg.models.layers import (TransformerBlock, gather_tokens, scatter_tokens, sincos_2d_pos_embed,
                                timestep_embedding, unpatchify)
from mdreg.registry import BACKBONES


@BACKBONES.register("uvit", aliases=("maskdm",))
class UViT(nn.Module):
    """U-ViT with long skips and a linear head; drops masked tokens (MaskDM sec. 3.3)."""

    def __init__(self, img_size: int = 64, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 512,
                 depth: int = 13, num_heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 mlp_time_embed: bool = False, num_classes: int = 0, conv: bool = False, skip: bool = True,
                 pos_init: str = "trunc_normal"):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.in_chans, self.out_chans = img_size, patch_size, in_chans, in_chans
        self.embed_dim, self.num_classes = embed_dim, num_classes
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim)
        self.time_embed = (nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                         nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity())
        self.label_emb = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        self.extras = 2 if num_classes > 0 else 1
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + self.num_patches, embed_dim))
        half = depth // 2
        self.in_blocks = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(half))
        self.mid_block = TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias)
        self.out_blocks = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, skip=skip)
                                        for _ in range(half))
        self.norm = nn.LayerNorm(embed_dim)
        self.patch_dim = patch_size ** 2 * in_chans
        self.decoder_pred = nn.Linear(embed_dim, self.patch_dim)
        self.final_layer = nn.Conv2d(in_chans, in_chans, 3, padding=1) if conv else nn.Identity()
        self.apply(_init_weights)
        self.init_pos_embed(pos_init)

    def init_pos_embed(self, how: str) -> None:
        """``trunc_normal`` (U-ViT/MaskDM, std 0.02) or ``sincos``: the patch positions start
        as the fixed 2-D sin-cos table (still learned), which lets small models find the
        image layout in hundreds rather than thousands of steps (used by the quickstart)."""
        if how == "trunc_normal":
            trunc_normal_(self.pos_embed, std=0.02)
        elif how == "sincos":
            with torch.no_grad():
                self.pos_embed.zero_()
                self.pos_embed[0, self.extras:] = sincos_2d_pos_embed(self.embed_dim, self.grid_size)
        else:
            raise ValueError(f"pos_init must be 'trunc_normal' or 'sincos', got {how!r}")

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position embeddings, (B, N, D)."""
        return self.patch_embed(x) + self.pos_embed[:, self.extras:]

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Predict epsilon for ``x`` (B, C, H, W) at timesteps ``t`` (B,).

        ``ids_keep`` (B, K): indices of the visible patches; the others are dropped before
        the transformer and their outputs are zero.
        """
        if ids_keep is not None and not isinstance(self.final_layer, nn.Identity):
            raise ValueError("masked training needs conv=False: the 3x3 conv head mixes masked and visible patches")
        tokens = self.embed_patches(x)
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)
        extra = [self.time_embed(timestep_embedding(t, self.embed_dim)).unsqueeze(1)]
        if self.label_emb is not None:
            if y is None:
                raise ValueError("this U-ViT is class-conditional (num_classes > 0): pass labels y")
            extra.insert(0, self.label_emb(y).unsqueeze(1))
        extra = torch.cat(extra, dim=1) + self.pos_embed[:, :self.extras]
        h = self.run_blocks(torch.cat([extra.to(tokens.dtype), tokens], dim=1))
        out = self.decoder_pred(self.norm(h))[:, self.extras:]
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_patches)
        return self.final_layer(unpatchify(out, self.patch_size, self.out_chans, self.grid_size))

    def run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        skips = []
        for blk in self.in_blocks:
            h = blk(h)
            skips.append(h)
        h = self.mid_block(h)
        for blk in self.out_blocks:
            h = blk(h, skips.pop())
        return h


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _preset(name: str, embed_dim: int, depth: int, num_heads: int, doc: str):
    """Register ``name``: :class:`UViT` with the size fixed; every other argument stays
    settable and shows in its signature (``tools/registry.py show``)."""
    fixed = {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads}

    def build(**kwargs) -> UViT:
        return UViT(**{**kwargs, **fixed})

    params = [p for p in inspect.signature(UViT).parameters.values() if p.name not in fixed]
    build.__signature__ = inspect.Signature(params, return_annotation=UViT)
    build.__name__ = build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = doc
    BACKBONES.add(name, build)
    return build


maskdm_s = _preset("maskdm_s", 512, 13, 8, "MaskDM-S (appendix B, Table 4): depth 13, dim 512, 8 heads; "
                   "44.3M params at 64px, patch 4.")
maskdm_b = _preset("maskdm_b", 768, 12, 12, "MaskDM-B (Table 4): depth 12 (6 in + mid + 6 out blocks), dim 768, "
                   "12 heads; 102.4M params at 256px, patch 4.")
maskdm_l = _preset("maskdm_l", 1024, 16, 16, "MaskDM-L (Table 4): depth 16 (8 in + mid + 8 out blocks), dim 1024, "
                   "16 heads.")
