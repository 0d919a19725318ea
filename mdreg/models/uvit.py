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

Time is the integer DDPM step through the sinusoidal embedding (``[cos | sin]``, no MLP
unless ``mlp_time_embed``). Labels: ``nn.Embedding`` with one extra row (index
``num_classes`` = :attr:`null_label`) for classifier-free guidance and label dropout, which is
U-ViT's own convention (its CFG configs count 1001 classes); ``null_class=False`` drops it.

Table 4 parameter counts (all with ``qkv_bias=False``, no time MLP, linear head):
MaskDM-S 44.29M at 64px / patch 4 (Table 4: 44M); MaskDM-B 102.42M at 256px / patch 4
(102M); MaskDM-L 235.17M at 256px / patch 4 (+0.9% over 233M) — the DWT variant of
MaskDM-L (:mod:`mdreg.models.uvit_dwt`, 128px bands, patch 4) gives 233.36M (+0.16%), the
configuration the paper trained MaskDM-L in (sec. 4.3). See ``docs/components.md``.
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed, trunc_normal_
from torch import nn

from mdreg.models.layers import (TransformerBlock, gather_tokens, scatter_tokens, sincos_2d_pos_embed,
                                 timestep_embedding, unpatchify)
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES


@BACKBONES.register("uvit", aliases=("maskdm",))
class UViT(nn.Module):
    """U-ViT with long skips and a linear head; drops masked tokens (MaskDM sec. 3.3)."""

    def __init__(self, img_size: int = 64, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 512,
                 depth: int = 13, num_heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 mlp_time_embed: bool = False, num_classes: int = 0, null_class: bool = True, conv: bool = False,
                 skip: bool = True, pos_init: str = "trunc_normal"):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.in_chans, self.out_chans = img_size, patch_size, in_chans, in_chans
        self.embed_dim, self.num_classes = embed_dim, num_classes
        self.null_label = num_classes if num_classes > 0 and null_class else None
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim)
        self.time_embed = (nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                         nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity())
        rows = num_classes + (self.null_label is not None)
        self.label_emb = nn.Embedding(rows, embed_dim) if num_classes > 0 else None
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
        self.build_extra_modules()
        self.apply(_init_weights)
        self.init_pos_embed(pos_init)

    def build_extra_modules(self) -> None:
        """Hook for subclasses (the DWT variant adds its high-band embedding and head here)."""

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

    # -- the three steps a subclass may change ---------------------------------------------
    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position embeddings, (B, N, D)."""
        return self.patch_embed(x) + self.pos_embed[:, self.extras:]

    def keep_tokens(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """The visible tokens (B, K, D) of ``tokens`` (B, N, D)."""
        return gather_tokens(tokens, ids_keep)

    def tokens_to_image(self, h: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Head: normalised patch tokens (B, N or K, D) -> prediction (B, C, H, W), zero at masked patches."""
        out = self.decoder_pred(h)
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_patches)
        return self.final_layer(unpatchify(out, self.patch_size, self.out_chans, self.grid_size))

    # -- forward ---------------------------------------------------------------------------
    def condition_tokens(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``[label?, time]`` tokens with their position embeddings, (B, extras, D)."""
        extra = [self.time_embed(timestep_embedding(t, self.embed_dim).to(self.pos_embed.dtype)).unsqueeze(1)]
        if self.label_emb is not None:
            if y is None:
                raise ValueError(f"this {type(self).__name__} is class-conditional (num_classes={self.num_classes}): "
                                 f"pass labels y (null_label={self.null_label} for unconditional)")
            extra.insert(0, self.label_emb(y).unsqueeze(1))
        return torch.cat(extra, dim=1) + self.pos_embed[:, :self.extras]

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
            tokens = self.keep_tokens(tokens, ids_keep)
        extra = self.condition_tokens(t, y)
        h = self.run_blocks(torch.cat([extra.to(tokens.dtype), tokens], dim=1))
        return self.tokens_to_image(self.norm(h[:, self.extras:]), ids_keep)

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


def _size(embed_dim: int, depth: int, num_heads: int) -> dict:
    return {"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads}


MASKDM_SIZES = {"s": _size(512, 13, 8), "b": _size(768, 12, 12), "l": _size(1024, 16, 16)}

maskdm_s = register_preset("maskdm_s", UViT, MASKDM_SIZES["s"], "MaskDM-S (appendix B, Table 4): depth 13 "
                           "(6 in + mid + 6 out blocks), dim 512, 8 heads; 44.29M params at 64px, patch 4.", __name__)
maskdm_b = register_preset("maskdm_b", UViT, MASKDM_SIZES["b"], "MaskDM-B (Table 4): depth 12 (6 in + mid + 6 out "
                           "blocks), dim 768, 12 heads; 102.42M params at 256px (CelebA-HQ), patch 4.", __name__,
                           defaults={"img_size": 256})
maskdm_l = register_preset("maskdm_l", UViT, MASKDM_SIZES["l"], "MaskDM-L (Table 4): depth 16 (8 in + mid + 8 out "
                           "blocks), dim 1024, 16 heads; 235.17M params at 256px, patch 4 (233.36M as maskdm_l_dwt).",
                           __name__, defaults={"img_size": 256})
