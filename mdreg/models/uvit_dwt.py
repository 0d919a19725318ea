"""MaskDM on Haar-DWT coefficients (MaskDM sec. 4.3 and appendix C, "Discrete Wavelet Transformation").

The input is the one-level Haar DWT of an image, as :class:`mdreg.data.dwt.HaarDWT`
lays it out: 12 channels at H/2 x W/2 for RGB, the low band ``x^L`` (3 channels) first,
then the three high bands ``x^H = (x^h, x^v, x^diag)`` concatenated along channels (9).
The appendix fixes only that the two parts get *separate patch embeddings and separate
position embeddings*; the rest is decided here:

* **Two token sets.** Each band part is patchified on the same p x p grid of the band
  images, giving N low tokens and N high tokens; the transformer sees
  ``[label?, time, N low tokens, N high tokens]``. Summing the two embeddings into one
  token per position would make "separate position embeddings" meaningless (two added
  tables are one table), so the appendix implies two token sets. It also reproduces Table
  4: MaskDM-L on 128x128 bands with patch 4 has 233.36M parameters (233M in the table)
  against 235.17M for the plain 256px model. (The maskdm repository snapshot we read has
  an undocumented ``MaskedDWTUViT`` with the same token layout — config ``scale: 1``.)
* **One mask on the shared grid.** The masker works on the N-cell grid (``grid_size``) and
  ``ids_keep`` selects the same cells in both sets, so 2K tokens enter the transformer.
  Coefficient (i, j) of every band describes the same 2x2 pixel block, so hiding a cell
  in both sets hides one image region completely, which is what masking means in pixel
  space (MaskDM eq. 3: the model sees a subset of pixels). Masking the sets
  independently (the maskdm snapshot draws two masks) would leak a hidden region's coarse
  content through the other band, and it does not fit the single-mask contract
  of the trainer; exactly the same cells are hidden here for every masker.
* **Heads.** One LayerNorm, then a linear head per part: low tokens -> p*p*3 values,
  high tokens -> p*p*9; both are unpatchified and concatenated back into the 12-channel
  layout. Masked cells are zero in all 12 channels.

Parameter names: the low band reuses U-ViT's ``patch_embed``, ``pos_embed`` (which also
holds the label/time token positions: ``num_prefix_tokens`` rows) and ``decoder_pred``; the
high bands add ``patch_embed_high``, ``pos_embed_high`` (patch positions only) and
``decoder_pred_high``.
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed, trunc_normal_
from torch import nn

from mdreg.models.checks import check_positive
from mdreg.models.layers import gather_tokens, scatter_tokens, unpatchify
from mdreg.models.presets import register_preset
from mdreg.models.uvit import UViTCore
from mdreg.registry import BACKBONES

BANDS = 4  # one low band + three high bands (one-level 2-D DWT)


@BACKBONES.register("uvit_dwt")
class UViTDWT(UViTCore):
    """U-ViT on Haar-DWT bands: separate low/high patch and position embeddings (MaskDM appendix C)."""

    def __init__(self, img_size: int = 128, patch_size: int = 4, in_chans: int = 12, embed_dim: int = 1024,
                 depth: int = 16, num_heads: int = 16, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 mlp_time_embed: bool = False, num_classes: int = 0, null_class: bool = True, skip: bool = True,
                 pos_init: str = "trunc_normal"):
        check_positive(in_chans=in_chans)
        if in_chans % BANDS:
            raise ValueError(f"uvit_dwt: in_chans={in_chans} must be 4 x the image channels (low band + 3 high "
                             f"bands), e.g. 12 for RGB")
        super().__init__(img_size, patch_size, in_chans // BANDS, embed_dim, depth, num_heads, mlp_ratio, qkv_bias,
                         mlp_time_embed, num_classes, null_class, conv=False, skip=skip, pos_init=pos_init)
        self.band_chans, self.high_chans = in_chans // BANDS, in_chans - in_chans // BANDS
        self.in_chans = self.out_chans = in_chans
        self.patch_embed_high = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=self.high_chans,
                                           embed_dim=embed_dim)
        self.pos_embed_high = nn.Parameter(torch.zeros(1, self.num_patches, embed_dim))
        self.decoder_pred_high = nn.Linear(embed_dim, patch_size ** 2 * self.high_chans)
        self.initialize_weights(pos_init)

    @torch.no_grad()
    def initialize_weights(self, pos_init: str) -> None:
        """U-ViT's scheme for every module; the high-band positions like the low band's
        (``sincos``: a copy of the low band's patch positions)."""
        self.init_core_weights(pos_init)
        if pos_init == "trunc_normal":
            trunc_normal_(self.pos_embed_high, std=0.02)
        else:
            self.pos_embed_high.copy_(self.pos_embed[:, self.num_prefix_tokens:])

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 12, h, w) -> (B, 2N, D): N low-band tokens, then N high-band tokens."""
        if x.shape[1] != self.in_chans:
            raise ValueError(f"uvit_dwt expects {self.in_chans} DWT channels, got {x.shape[1]} "
                             f"(use data.transform=haar_dwt)")
        low = self.patch_embed(x[:, :self.band_chans]) + self.pos_embed[:, self.num_prefix_tokens:]  # (B, N, D)
        high = self.patch_embed_high(x[:, self.band_chans:]) + self.pos_embed_high  # (B, N, D)
        return torch.cat([low, high], dim=1)  # (B, 2N, D)

    def keep_tokens(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """The same grid cells from both sets: (B, 2N, D) -> (B, 2K, D)."""
        low, high = tokens.split(self.num_patches, dim=1)  # (B, N, D) each
        return torch.cat([gather_tokens(low, ids_keep), gather_tokens(high, ids_keep)], dim=1)  # (B, 2K, D)

    def tokens_to_image(self, h: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Normalised tokens (B, 2K or 2N, D) -> bands (B, 12, h, w), zero at masked cells."""
        low, high = h.chunk(2, dim=1)  # (B, K or N, D) each
        low, high = self.decoder_pred(low), self.decoder_pred_high(high)  # (B, K or N, p*p*3), (.., p*p*9)
        if ids_keep is not None:
            low = scatter_tokens(low, ids_keep, self.num_patches)  # (B, N, p*p*3), zero where masked
            high = scatter_tokens(high, ids_keep, self.num_patches)  # (B, N, p*p*9), zero where masked
        low = unpatchify(low, self.patch_size, self.band_chans, self.grid_size)  # (B, 3, h, w)
        high = unpatchify(high, self.patch_size, self.high_chans, self.grid_size)  # (B, 9, h, w)
        return torch.cat([low, high], dim=1)  # (B, 12, h, w)


maskdm_b_dwt = register_preset("maskdm_b_dwt", UViTDWT, dict(embed_dim=768, depth=12, num_heads=12),
                               "MaskDM-B on Haar-DWT bands (sec. 4.3): dim 768, depth 12, 12 heads; 101.07M params "
                               "at 128px bands, patch 4.", __name__)
maskdm_l_dwt = register_preset("maskdm_l_dwt", UViTDWT, dict(embed_dim=1024, depth=16, num_heads=16),
                               "MaskDM-L on Haar-DWT bands (sec. 4.3, Fig. 4, Table 2): dim 1024, depth 16, 16 heads; "
                               "233.36M params at 128px bands, patch 4 (Table 4: 233M).", __name__)
