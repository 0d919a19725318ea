"""MaskDiT: asymmetric DiT encoder-decoder for masked training (Zheng et al. 2023, sec. 2.2, Fig. 1).

* Encoder: DiT (here DiT-XL/2 sizes by default) on the visible tokens only, without its
  final projection; labels enter through a bias-free Linear on one-hot vectors whose null
  class is the all-zero vector (``null_label = num_classes`` maps to it).
* Decoder layer: LayerNorm (no affine), adaLN shift/scale from the 1152-d condition,
  Linear 1152 -> 512.
* Un-shuffle: decoded visible tokens go back to their grid positions; masked positions
  get one learnable mask token (1, 1, 512), N(0, 0.02) — or, with ``mask_token=False``,
  fixed zeros (see below); then the fixed 2-D sin-cos decoder positions are added to all
  N tokens.
* Decoder: 8 DiT blocks of width 512 (16 heads) conditioned on the same 1152-d ``c``, and a
  final adaLN layer 512 -> p*p*C (no learned sigma).

Mask token (``mask_token``): the official model has one only when it is trained with the MAE
loss (Anima-Lab/MaskDiT ``models/maskdit.py`` at 04a4e61: ``self.mask_token = None`` at line
295, the parameter created at lines 313-314 under ``if self.mae_loss_coef > 0``); without it
the masked positions enter the decoder as zeros (lines 531-532). So MaskDiT's lambda = 0 runs
(Table 2b/2c) have no trainable mask token: build them with ``mask_token=False``. A mask token
without the MAE loss would still get gradients through the DSM term (via attention) and drift.

Without ``ids_keep`` (sampling, unmasking tuning) encoder and decoder see all N tokens.
Parameter names match the official state dict under its ``model.`` prefix
(``decoder_layer``, ``decoder_blocks``, ``mask_token``, ``decoder_pos_embed``, ...).
MaskDiT-XL/2 at 32x32x4 latents: 730.5M parameters, 65.5 GMACs per image at 50% masking.
"""
from __future__ import annotations

import torch
from torch import nn

from mdreg.models.checks import check_divides, check_multiple_of, check_positive
from mdreg.models.dit import DiTEncoder, xavier_uniform_linears
from mdreg.models.dit_layers import AdaLNLinear, DiTBlock, OneHotLabelEmbedder
from mdreg.models.layers import scatter_tokens, sincos_2d_pos_embed, unpatchify
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES


@BACKBONES.register("maskdit")
class MaskDiT(DiTEncoder):
    """DiT encoder on visible tokens + lightweight DiT decoder on all tokens (MaskDiT sec. 2.2)."""

    def __init__(self, img_size: int = 32, patch_size: int = 2, in_chans: int = 4, hidden_size: int = 1152,
                 depth: int = 28, num_heads: int = 16, mlp_ratio: float = 4.0, num_classes: int = 1000,
                 decoder_hidden_size: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16,
                 mask_token: bool = True):
        check_positive(decoder_hidden_size=decoder_hidden_size, decoder_depth=decoder_depth,
                       decoder_num_heads=decoder_num_heads)
        check_divides("decoder_num_heads", decoder_num_heads, "decoder_hidden_size", decoder_hidden_size)
        check_multiple_of("decoder_hidden_size", decoder_hidden_size, 4, "2-D sin-cos positions")
        super().__init__(img_size, patch_size, in_chans, hidden_size, depth, num_heads, mlp_ratio, num_classes,
                         label_embedder=OneHotLabelEmbedder)
        self.learn_sigma, self.out_chans = False, in_chans
        self.decoder_hidden_size, self.decoder_depth = decoder_hidden_size, decoder_depth
        self.decoder_layer = AdaLNLinear(hidden_size, decoder_hidden_size, cond_dim=hidden_size)
        if mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_hidden_size))
        else:  # the official lambda = 0 model: no parameter, masked positions are zeros
            self.register_parameter("mask_token", None)
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, decoder_hidden_size),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList(DiTBlock(decoder_hidden_size, decoder_num_heads, mlp_ratio,
                                                     cond_dim=hidden_size) for _ in range(decoder_depth))
        self.final_layer = AdaLNLinear(decoder_hidden_size, patch_size ** 2 * self.out_chans, cond_dim=hidden_size)
        self.initialize_weights()

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's scheme for the encoder; decoder positions sin-cos, mask token N(0, 0.02), decoder
        adaLN projections and the decoder layer zeroed (as the official code does)."""
        xavier_uniform_linears(self)
        self.init_encoder_weights()
        self.final_layer.zero_()
        self.decoder_pos_embed.copy_(sincos_2d_pos_embed(self.decoder_hidden_size, self.grid_size).unsqueeze(0))
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=0.02)
        for block in self.decoder_blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        self.decoder_layer.zero_()

    def decoder_input(self, tokens: torch.Tensor, c: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Decoder layer, un-shuffle (mask token or zeros at masked positions), + decoder positions: (B, N, D_dec)."""
        x = self.decoder_layer(tokens, c)  # (B, K or N, D_dec)
        if ids_keep is not None:
            x = scatter_tokens(x, ids_keep, self.num_patches, fill=self.mask_token)  # (B, N, D_dec)
        elif self.mask_token is not None and torch.is_grad_enabled() and self.mask_token.requires_grad:
            # nothing masked (unmasking tuning): the mask token must still be in the graph, with
            # a zero gradient, or DDP (find_unused_parameters=False) fails on the next step
            x = x + 0.0 * self.mask_token.sum()  # (B, N, D_dec)
        return x + self.decoder_pos_embed  # (B, N, D_dec)

    def decode(self, tokens: torch.Tensor, c: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Decoder input -> decoder blocks -> final layer: (B, N, p*p*C) for every patch."""
        x = self.decoder_input(tokens, c, ids_keep)  # (B, N, D_dec)
        for block in self.decoder_blocks:
            x = block(x, c)  # (B, N, D_dec)
        return self.final_layer(x, c)  # (B, N, p*p*C)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) at times ``t`` (B,) -> (B, C, H, W); ``ids_keep`` (B, K) visible patches."""
        tokens, c = self.encode(x, t, y, ids_keep)  # (B, K or N, D), (B, D)
        out = self.decode(tokens, c, ids_keep)  # (B, N, p*p*C)
        return unpatchify(out, self.patch_size, self.out_chans, self.grid_size)  # (B, C, H, W)


maskdit_xl_2 = register_preset(
    "maskdit_xl_2", MaskDiT,
    {"hidden_size": 1152, "depth": 28, "num_heads": 16, "patch_size": 2,
     "decoder_hidden_size": 512, "decoder_depth": 8, "decoder_num_heads": 16},
    "MaskDiT-XL/2 (sec. 4.1): DiT-XL/2 encoder + 8-block, 512-wide, 16-head decoder; 730.5M params at 32x32x4 "
    "(mask_token=False for the lambda = 0 runs of Table 2: 512 fewer).", __name__)
