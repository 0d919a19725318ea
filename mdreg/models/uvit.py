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

Blocks are timm's pre-norm ViT ``Block`` (LayerNorm eps 1e-5 as U-ViT's ``nn.LayerNorm``);
an out block adds U-ViT's ``skip_linear``. :class:`UViTCore` builds the network and runs it;
:class:`UViT` (registered ``uvit``/``maskdm``) and :class:`~mdreg.models.uvit_dwt.UViTDWT`
each build their own extra parts, then initialise the whole network once.
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from mdreg.models.checks import check_multiple_of, check_num_classes, check_transformer
from mdreg.models.layers import (
    gather_tokens,
    scatter_tokens,
    sincos_2d_pos_embed,
    timestep_embedding,
    unpatchify,
)
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES

POS_INITS = ("trunc_normal", "sincos")


class UViTBlock(Block):
    """timm's pre-norm block ``x + Attn(LN(x))``, ``x + MLP(LN(x))``; with ``skip=True`` a U-ViT
    "out" block (Bao et al. 2023, sec. 3): the long skip from the matching "in" block is
    concatenated and mapped back to ``dim`` by ``skip_linear`` first."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False, skip: bool = False):
        super().__init__(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_layer=nn.LayerNorm)
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))  # (B, L, 2D) -> (B, L, D)
        return super().forward(x)  # (B, L, D)


class UViTCore(nn.Module):
    """U-ViT with long skips and a linear head, not yet initialised: what ``uvit`` and
    ``uvit_dwt`` share. Drops masked tokens before the transformer (MaskDM sec. 3.3)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int, depth: int, num_heads: int,
                 mlp_ratio: float, qkv_bias: bool, mlp_time_embed: bool, num_classes: int, null_class: bool,
                 conv: bool, skip: bool, pos_init: str):
        super().__init__()
        check_transformer(img_size, patch_size, in_chans, "embed_dim", embed_dim, depth, num_heads, mlp_ratio)
        check_num_classes(num_classes)
        if pos_init not in POS_INITS:
            raise ValueError(f"pos_init={pos_init!r} is not one of {', '.join(map(repr, POS_INITS))}")
        if pos_init == "sincos":
            check_multiple_of("embed_dim", embed_dim, 4, "pos_init='sincos' uses 2-D sin-cos positions")
        self.img_size, self.patch_size, self.in_chans, self.out_chans = img_size, patch_size, in_chans, in_chans
        self.embed_dim, self.num_classes = embed_dim, num_classes
        self.null_label = num_classes if num_classes > 0 and null_class else None
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.num_prefix_tokens = 2 if num_classes > 0 else 1  # [label?, time] rows of pos_embed (timm's convention)
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim)
        self.time_embed = (nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                         nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity())
        rows = num_classes + (self.null_label is not None)
        self.label_emb = nn.Embedding(rows, embed_dim) if num_classes > 0 else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + self.num_patches, embed_dim))
        half = depth // 2
        self.in_blocks = nn.ModuleList(UViTBlock(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(half))
        self.mid_block = UViTBlock(embed_dim, num_heads, mlp_ratio, qkv_bias)
        self.out_blocks = nn.ModuleList(UViTBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, skip=skip)
                                        for _ in range(half))
        self.norm = nn.LayerNorm(embed_dim)
        self.patch_dim = patch_size ** 2 * in_chans
        self.decoder_pred = nn.Linear(embed_dim, self.patch_dim)
        self.final_layer = nn.Conv2d(in_chans, in_chans, 3, padding=1) if conv else nn.Identity()

    @torch.no_grad()
    def init_core_weights(self, pos_init: str) -> None:
        """U-ViT's ``_init_weights`` on every module (trunc-normal 0.02 linears, unit LayerNorms),
        then the positions: ``trunc_normal`` (U-ViT/MaskDM, std 0.02) or ``sincos``: the patch
        positions start as the fixed 2-D sin-cos table (still learned), which lets small models
        find the image layout in hundreds rather than thousands of steps (used by the quickstart)."""
        self.apply(_init_weights)
        if pos_init == "trunc_normal":
            trunc_normal_(self.pos_embed, std=0.02)
        else:
            self.pos_embed.zero_()
            self.pos_embed[0, self.num_prefix_tokens:] = sincos_2d_pos_embed(self.embed_dim, self.grid_size)

    # -- the three steps uvit_dwt changes --------------------------------------------------
    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position embeddings, (B, N, D)."""
        return self.patch_embed(x) + self.pos_embed[:, self.num_prefix_tokens:]  # (B, N, D)

    def keep_tokens(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """The visible tokens (B, K, D) of ``tokens`` (B, N, D)."""
        return gather_tokens(tokens, ids_keep)  # (B, K, D)

    def tokens_to_image(self, h: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Head: normalised patch tokens (B, N or K, D) -> prediction (B, C, H, W), zero at masked patches."""
        out = self.decoder_pred(h)  # (B, K or N, p*p*C)
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_patches)  # (B, N, p*p*C), zero where masked
        out = unpatchify(out, self.patch_size, self.out_chans, self.grid_size)  # (B, C, H, W)
        return self.final_layer(out)  # (B, C, H, W)

    # -- forward ---------------------------------------------------------------------------
    def condition_tokens(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``[label?, time]`` tokens with their position embeddings, (B, num_prefix_tokens, D)."""
        time = timestep_embedding(t, self.embed_dim).to(self.pos_embed.dtype)  # (B, D)
        extra = [self.time_embed(time).unsqueeze(1)]  # [(B, 1, D)]
        if self.label_emb is not None:
            if y is None:
                raise ValueError(f"this {type(self).__name__} is class-conditional (num_classes={self.num_classes}): "
                                 f"pass labels y (null_label={self.null_label} for unconditional)")
            extra.insert(0, self.label_emb(y).unsqueeze(1))  # [(B, 1, D), (B, 1, D)]
        return torch.cat(extra, dim=1) + self.pos_embed[:, :self.num_prefix_tokens]  # (B, P, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Predict epsilon for ``x`` (B, C, H, W) at timesteps ``t`` (B,).

        ``ids_keep`` (B, K): indices of the visible patches; the others are dropped before
        the transformer and their outputs are zero.
        """
        if ids_keep is not None and not isinstance(self.final_layer, nn.Identity):
            raise ValueError("masked training needs conv=False: the 3x3 conv head mixes masked and visible patches")
        tokens = self.embed_patches(x)  # (B, N, D)
        if ids_keep is not None:
            tokens = self.keep_tokens(tokens, ids_keep)  # (B, K, D)
        extra = self.condition_tokens(t, y)  # (B, P, D), P = num_prefix_tokens
        h = self.run_blocks(torch.cat([extra.to(tokens.dtype), tokens], dim=1))  # (B, P + K or N, D)
        return self.tokens_to_image(self.norm(h[:, self.num_prefix_tokens:]), ids_keep)  # (B, C, H, W)

    def run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        """In blocks (each output kept), mid block, out blocks (each fusing one kept output): (B, L, D)."""
        skips = []
        for blk in self.in_blocks:
            h = blk(h)  # (B, L, D)
            skips.append(h)
        h = self.mid_block(h)  # (B, L, D)
        for blk in self.out_blocks:
            h = blk(h, skips.pop())  # (B, L, D)
        return h


@BACKBONES.register("uvit", aliases=("maskdm",))
class UViT(UViTCore):
    """U-ViT with long skips and a linear head; drops masked tokens (MaskDM sec. 3.3)."""

    def __init__(self, img_size: int = 64, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 512,
                 depth: int = 13, num_heads: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 mlp_time_embed: bool = False, num_classes: int = 0, null_class: bool = True, conv: bool = False,
                 skip: bool = True, pos_init: str = "trunc_normal"):
        super().__init__(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
                         mlp_time_embed, num_classes, null_class, conv, skip, pos_init)
        self.init_core_weights(pos_init)


@torch.no_grad()
def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# MaskDM Table 4 sizes (depth counts in + mid + out blocks the U-ViT way: depth // 2 in, 1 mid, depth // 2 out)
maskdm_s = register_preset("maskdm_s", UViT, dict(embed_dim=512, depth=13, num_heads=8),
                           "MaskDM-S (appendix B, Table 4): depth 13 (6 in + mid + 6 out blocks), dim 512, 8 heads; "
                           "44.29M params at 64px, patch 4.", __name__)
maskdm_b = register_preset("maskdm_b", UViT, dict(embed_dim=768, depth=12, num_heads=12),
                           "MaskDM-B (Table 4): depth 12 (6 in + mid + 6 out blocks), dim 768, 12 heads; 102.42M "
                           "params at 256px (CelebA-HQ), patch 4.", __name__, defaults={"img_size": 256})
maskdm_l = register_preset("maskdm_l", UViT, dict(embed_dim=1024, depth=16, num_heads=16),
                           "MaskDM-L (Table 4): depth 16 (8 in + mid + 8 out blocks), dim 1024, 16 heads; 235.17M "
                           "params at 256px, patch 4 (233.36M as maskdm_l_dwt).", __name__, defaults={"img_size": 256})
