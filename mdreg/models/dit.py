"""DiT: diffusion transformer with adaLN-Zero (Peebles & Xie 2023), sizes S/B/L/XL, patch 2/4/8.

Patch tokens get fixed 2-D sin-cos positions (a non-trainable parameter ``pos_embed``, as
in the official state dict); the condition ``c = t_emb + y_emb`` drives every block
through adaLN-Zero; the final layer maps each token to ``p*p*out_chans`` values, with
``out_chans = 2 * in_chans`` when ``learn_sigma`` (DiT's learned variance; mdreg's
objectives read the first ``in_chans`` channels and ignore the rest).

Masking (MaskDiT Table 2a, "DiT backbone"): with ``ids_keep`` the masked tokens are
dropped after the position embedding, the blocks and the final layer see only the K
visible tokens, and the output is zero at masked patches.

``t`` is whatever the objective feeds: integer DDPM steps (DiT) or ``c_noise = ln(sigma)/4``
(EDM preconditioning, MaskDiT appendix 6.1). Initialisation follows DiT: Xavier-uniform
linears (patch embedding on its flattened kernel), N(0, 0.02) label table and time MLP,
zeroed adaLN projections and final layer.
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from torch import nn

from mdreg.models.dit_layers import AdaLNLinear, DiTBlock, LabelEmbedder, TimestepEmbedder
from mdreg.models.layers import gather_tokens, scatter_tokens, sincos_2d_pos_embed, unpatchify
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES


@BACKBONES.register("dit")
class DiT(nn.Module):
    """DiT with adaLN-Zero blocks; drops masked tokens before the blocks (MaskDiT Table 2a baseline)."""

    label_embedder_cls = LabelEmbedder

    def __init__(self, img_size: int = 32, patch_size: int = 2, in_chans: int = 4, hidden_size: int = 1152,
                 depth: int = 28, num_heads: int = 16, mlp_ratio: float = 4.0, num_classes: int = 1000,
                 learn_sigma: bool = False):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        if hidden_size % 4:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by 4 (2-D sin-cos positions)")
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.out_chans = 2 * in_chans if learn_sigma else in_chans
        self.learn_sigma, self.hidden_size, self.num_classes = learn_sigma, hidden_size, num_classes
        self.null_label = num_classes if num_classes > 0 else None
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.x_embedder = PatchEmbed(img_size, patch_size, in_chans, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = self.label_embedder_cls(num_classes, hidden_size) if num_classes > 0 else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.build_head()
        self.initialize_weights()

    def build_head(self) -> None:
        """DiT's final layer (MaskDiT replaces it with its decoder)."""
        self.final_layer = AdaLNLinear(self.hidden_size, self.patch_size ** 2 * self.out_chans)

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's initialisation (sec. 3.2, "adaLN-Zero"; official ``initialize_weights``)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.pos_embed.copy_(sincos_2d_pos_embed(self.hidden_size, self.grid_size).unsqueeze(0))
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        self.final_layer.zero_()

    def condition(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``c = t_emb + y_emb`` (B, hidden)."""
        c = self.t_embedder(t)
        if self.y_embedder is not None:
            if y is None:
                raise ValueError(f"this {type(self).__name__} is class-conditional (num_classes={self.num_classes}): "
                                 f"pass labels y (null_label={self.null_label} for unconditional)")
            c = c + self.y_embedder(y).to(c.dtype)
        return c

    def encode(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
               ids_keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed, drop masked tokens, run the blocks: (tokens (B, K or N, hidden), condition c)."""
        tokens = self.x_embedder(x) + self.pos_embed
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)
        c = self.condition(t, y)
        for block in self.blocks:
            tokens = block(tokens, c)
        return tokens, c

    def decode(self, tokens: torch.Tensor, c: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Final layer; masked patches get zero output. Returns (B, N, p*p*out_chans)."""
        out = self.final_layer(tokens, c)
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_patches)
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) at times ``t`` (B,) -> (B, out_chans, H, W); ``ids_keep`` (B, K) visible patches."""
        tokens, c = self.encode(x, t, y, ids_keep)
        return unpatchify(self.decode(tokens, c, ids_keep), self.patch_size, self.out_chans, self.grid_size)


DIT_SIZES = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "xl": (1152, 28, 16)}


def _register_dit_presets() -> dict:
    presets = {}
    for size, (hidden, depth, heads) in DIT_SIZES.items():
        for patch in (2, 4, 8):
            name = f"dit_{size}_{patch}"
            doc = (f"DiT-{size.upper()}/{patch} (DiT Table 1): hidden {hidden}, depth {depth}, {heads} heads, "
                   f"patch {patch}.")
            presets[name] = register_preset(name, DiT, {"hidden_size": hidden, "depth": depth, "num_heads": heads,
                                                        "patch_size": patch}, doc, __name__)
    return presets


PRESETS = _register_dit_presets()
