"""MaskDiT: asymmetric DiT encoder-decoder for masked training (Zheng et al. 2023, sec. 2.2, Fig. 1).

* Encoder: DiT (here DiT-XL/2 sizes by default) on the visible tokens only, without its
  final projection; labels enter through a bias-free Linear on one-hot vectors whose null
  class is the all-zero vector (``null_label = num_classes`` maps to it).
* Decoder layer: LayerNorm (no affine), adaLN shift/scale from the 1152-d condition,
  Linear 1152 -> 512.
* Un-shuffle: decoded visible tokens go back to their grid positions; masked positions
  get one learnable mask token (1, 1, 512), N(0, 0.02); then the fixed 2-D sin-cos decoder
  positions are added to all N tokens.
* Decoder: 8 DiT blocks of width 512 (16 heads) conditioned on the same 1152-d ``c``, and a
  final adaLN layer 512 -> p*p*C (no learned sigma).

Without ``ids_keep`` (sampling, unmasking tuning) encoder and decoder see all N tokens.
Parameter names match the official state dict under its ``model.`` prefix
(``decoder_layer``, ``decoder_blocks``, ``mask_token``, ``decoder_pos_embed``, ...).
MaskDiT-XL/2 at 32x32x4 latents: 730.5M parameters, 65.5 GMACs per image at 50% masking.
"""
from __future__ import annotations

import torch
from torch import nn

from mdreg.models.dit import DiT
from mdreg.models.dit_layers import AdaLNLinear, DiTBlock, OneHotLabelEmbedder
from mdreg.models.layers import scatter_tokens, sincos_2d_pos_embed
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES


@BACKBONES.register("maskdit")
class MaskDiT(DiT):
    """DiT encoder on visible tokens + lightweight DiT decoder on all tokens (MaskDiT sec. 2.2)."""

    label_embedder_cls = OneHotLabelEmbedder

    def __init__(self, img_size: int = 32, patch_size: int = 2, in_chans: int = 4, hidden_size: int = 1152,
                 depth: int = 28, num_heads: int = 16, mlp_ratio: float = 4.0, num_classes: int = 1000,
                 decoder_hidden_size: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16):
        if decoder_hidden_size % 4:
            raise ValueError(f"decoder_hidden_size {decoder_hidden_size} must be divisible by 4 (sin-cos positions)")
        # read by build_head() while DiT.__init__ runs
        self.decoder_hidden_size, self.decoder_depth = decoder_hidden_size, decoder_depth
        self.decoder_num_heads, self.mlp_ratio = decoder_num_heads, mlp_ratio
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, hidden_size=hidden_size,
                         depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, num_classes=num_classes,
                         learn_sigma=False)

    def build_head(self) -> None:
        """Decoder layer, mask token, decoder positions, decoder blocks and the 512-wide final layer."""
        width = self.decoder_hidden_size
        self.decoder_layer = AdaLNLinear(self.hidden_size, width, cond_dim=self.hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, width), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(DiTBlock(width, self.decoder_num_heads, self.mlp_ratio,
                                                     cond_dim=self.hidden_size) for _ in range(self.decoder_depth))
        self.final_layer = AdaLNLinear(width, self.patch_size ** 2 * self.out_chans, cond_dim=self.hidden_size)

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's scheme for the encoder; decoder positions sin-cos, mask token N(0, 0.02), decoder
        adaLN projections and the decoder layer zeroed (as the official code does)."""
        super().initialize_weights()
        self.decoder_pos_embed.copy_(sincos_2d_pos_embed(self.decoder_hidden_size, self.grid_size).unsqueeze(0))
        nn.init.normal_(self.mask_token, std=0.02)
        for block in self.decoder_blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        self.decoder_layer.zero_()

    def decode(self, tokens: torch.Tensor, c: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Decoder layer -> un-shuffle with mask tokens -> + positions -> decoder blocks -> final layer."""
        x = self.decoder_layer(tokens, c)
        if ids_keep is not None:
            x = scatter_tokens(x, ids_keep, self.num_patches, fill=self.mask_token)
        elif torch.is_grad_enabled() and self.mask_token.requires_grad:
            # nothing masked (unmasking tuning): the mask token must still be in the graph, with
            # a zero gradient, or DDP (find_unused_parameters=False) fails on the next step
            x = x + 0.0 * self.mask_token.sum()
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x, c)
        return self.final_layer(x, c)


maskdit_xl_2 = register_preset(
    "maskdit_xl_2", MaskDiT,
    {"hidden_size": 1152, "depth": 28, "num_heads": 16, "patch_size": 2,
     "decoder_hidden_size": 512, "decoder_depth": 8, "decoder_num_heads": 16},
    "MaskDiT-XL/2 (sec. 4.1): DiT-XL/2 encoder + 8-block, 512-wide, 16-head decoder; 730.5M params at 32x32x4.",
    __name__)
