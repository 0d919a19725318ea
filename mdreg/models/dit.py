"""DiT: diffusion transformer with adaLN-Zero (Peebles & Xie 2023), sizes S/B/L/XL, patch 2/4/8.

Patch tokens get fixed 2-D sin-cos positions (a non-trainable parameter ``pos_embed``, as
in the official state dict); the condition ``c = t_emb + y_emb`` drives every block
through adaLN-Zero; the final layer maps each token to ``p*p*out_chans`` values, with
``out_chans = 2 * in_chans`` when ``learn_sigma`` (DiT's learned variance: the first
``in_chans`` channels are epsilon, the rest the variance values that ``objective:iddpm_hybrid``
trains and ``sampler:ddpm_learned`` uses).

Masking (MaskDiT Table 2a, "DiT backbone"): with ``ids_keep`` the masked tokens are
dropped after the position embedding, the blocks and the final layer see only the K
visible tokens, and the output is zero at masked patches.

``t`` is whatever the objective feeds: integer DDPM steps (DiT) or ``c_noise = ln(sigma)/4``
(EDM preconditioning, MaskDiT appendix 6.1). Initialisation follows DiT (facebookresearch/DiT
``models.py``, ``DiT.initialize_weights``): Xavier-uniform linears (patch embedding on its
flattened kernel), N(0, 0.02) label table and time MLP, zeroed adaLN projections and final layer.

:class:`DiTEncoder` is the part MaskDiT shares (:mod:`mdreg.models.maskdit`); the presets at
the bottom are DiT's Table 1 sizes, one line each as in the official ``models.py``.
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from torch import nn

from mdreg.models.checks import check_multiple_of, check_num_classes, check_transformer
from mdreg.models.dit_layers import (
    AdaLNLinear,
    DiTBlock,
    LabelEmbedder,
    TimestepEmbedder,
)
from mdreg.models.layers import (
    gather_tokens,
    scatter_tokens,
    sincos_2d_pos_embed,
    unpatchify,
)
from mdreg.models.presets import register_preset
from mdreg.registry import BACKBONES


@torch.no_grad()
def xavier_uniform_linears(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every ``nn.Linear`` in ``module`` (DiT's ``_basic_init``)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DiTEncoder(nn.Module):
    """DiT without an output layer: patch embedding + fixed sin-cos positions, the condition
    ``c = t_emb + y_emb`` and the adaLN-Zero blocks. :class:`DiT` adds DiT's final layer,
    :class:`~mdreg.models.maskdit.MaskDiT` its decoder; each builds its own part after this
    constructor and then initialises the whole network once."""

    num_prefix_tokens = 0  # timm's convention: ``pos_embed`` holds patch positions only, no class/time token

    def __init__(self, img_size: int, patch_size: int, in_chans: int, hidden_size: int, depth: int, num_heads: int,
                 mlp_ratio: float, num_classes: int, label_embedder: type[nn.Module]):
        super().__init__()
        check_transformer(img_size, patch_size, in_chans, "hidden_size", hidden_size, depth, num_heads, mlp_ratio)
        check_multiple_of("hidden_size", hidden_size, 4, "2-D sin-cos positions")
        check_num_classes(num_classes)
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.hidden_size, self.num_classes = hidden_size, num_classes
        self.null_label = num_classes if num_classes > 0 else None
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.x_embedder = PatchEmbed(img_size, patch_size, in_chans, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = label_embedder(num_classes, hidden_size) if num_classes > 0 else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))

    @torch.no_grad()
    def init_encoder_weights(self) -> None:
        """DiT's initialisation of the shared part, after :func:`xavier_uniform_linears`: sin-cos
        positions, patch embedding as a flattened Linear, N(0, 0.02) label table and time MLP,
        zeroed adaLN projections of the blocks."""
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

    def condition(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``c = t_emb + y_emb``, (B, D)."""
        c = self.t_embedder(t)  # (B, D)
        if self.y_embedder is not None:
            if y is None:
                raise ValueError(f"this {type(self).__name__} is class-conditional (num_classes={self.num_classes}): "
                                 f"pass labels y (null_label={self.null_label} for unconditional)")
            c = c + self.y_embedder(y).to(c.dtype)  # (B, D)
        return c

    def encode(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
               ids_keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed, drop masked tokens, run the blocks: (tokens (B, K or N, D), condition c (B, D))."""
        tokens = self.x_embedder(x) + self.pos_embed  # (B, N, D), N = H * W / p**2
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)  # (B, K, D): the visible patches
        c = self.condition(t, y)  # (B, D)
        for block in self.blocks:
            tokens = block(tokens, c)  # (B, K or N, D)
        return tokens, c


@BACKBONES.register("dit")
class DiT(DiTEncoder):
    """DiT with adaLN-Zero blocks; drops masked tokens before the blocks (MaskDiT Table 2a baseline)."""

    def __init__(self, img_size: int = 32, patch_size: int = 2, in_chans: int = 4, hidden_size: int = 1152,
                 depth: int = 28, num_heads: int = 16, mlp_ratio: float = 4.0, num_classes: int = 1000,
                 learn_sigma: bool = False):
        super().__init__(img_size, patch_size, in_chans, hidden_size, depth, num_heads, mlp_ratio, num_classes,
                         label_embedder=LabelEmbedder)
        self.learn_sigma = learn_sigma
        self.out_chans = 2 * in_chans if learn_sigma else in_chans
        self.final_layer = AdaLNLinear(hidden_size, patch_size ** 2 * self.out_chans)
        self.initialize_weights()

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """DiT's initialisation (sec. 3.2, "adaLN-Zero"; official ``initialize_weights``)."""
        xavier_uniform_linears(self)
        self.init_encoder_weights()
        self.final_layer.zero_()

    def decode(self, tokens: torch.Tensor, c: torch.Tensor, ids_keep: torch.Tensor | None) -> torch.Tensor:
        """Final layer; masked patches get zero output. Returns (B, N, p*p*out_chans)."""
        out = self.final_layer(tokens, c)  # (B, K or N, p*p*out_chans)
        if ids_keep is not None:
            out = scatter_tokens(out, ids_keep, self.num_patches)  # (B, N, p*p*out_chans), zero where masked
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) at times ``t`` (B,) -> (B, out_chans, H, W); ``ids_keep`` (B, K) visible patches."""
        tokens, c = self.encode(x, t, y, ids_keep)  # (B, K or N, D), (B, D)
        out = self.decode(tokens, c, ids_keep)  # (B, N, p*p*out_chans)
        return unpatchify(out, self.patch_size, self.out_chans, self.grid_size)  # (B, out_chans, H, W)


# DiT Table 1 sizes: S (384 wide, 12 deep, 6 heads), B (768, 12, 12), L (1024, 24, 16), XL (1152, 28, 16)
dit_xl_2 = register_preset("dit_xl_2", DiT, dict(depth=28, hidden_size=1152, patch_size=2, num_heads=16),
                           "DiT-XL/2 (DiT Table 1): hidden 1152, depth 28, 16 heads, patch 2.", __name__)
dit_xl_4 = register_preset("dit_xl_4", DiT, dict(depth=28, hidden_size=1152, patch_size=4, num_heads=16),
                           "DiT-XL/4 (DiT Table 1): hidden 1152, depth 28, 16 heads, patch 4.", __name__)
dit_xl_8 = register_preset("dit_xl_8", DiT, dict(depth=28, hidden_size=1152, patch_size=8, num_heads=16),
                           "DiT-XL/8 (DiT Table 1): hidden 1152, depth 28, 16 heads, patch 8.", __name__)
dit_l_2 = register_preset("dit_l_2", DiT, dict(depth=24, hidden_size=1024, patch_size=2, num_heads=16),
                          "DiT-L/2 (DiT Table 1): hidden 1024, depth 24, 16 heads, patch 2.", __name__)
dit_l_4 = register_preset("dit_l_4", DiT, dict(depth=24, hidden_size=1024, patch_size=4, num_heads=16),
                          "DiT-L/4 (DiT Table 1): hidden 1024, depth 24, 16 heads, patch 4.", __name__)
dit_l_8 = register_preset("dit_l_8", DiT, dict(depth=24, hidden_size=1024, patch_size=8, num_heads=16),
                          "DiT-L/8 (DiT Table 1): hidden 1024, depth 24, 16 heads, patch 8.", __name__)
dit_b_2 = register_preset("dit_b_2", DiT, dict(depth=12, hidden_size=768, patch_size=2, num_heads=12),
                          "DiT-B/2 (DiT Table 1): hidden 768, depth 12, 12 heads, patch 2.", __name__)
dit_b_4 = register_preset("dit_b_4", DiT, dict(depth=12, hidden_size=768, patch_size=4, num_heads=12),
                          "DiT-B/4 (DiT Table 1): hidden 768, depth 12, 12 heads, patch 4.", __name__)
dit_b_8 = register_preset("dit_b_8", DiT, dict(depth=12, hidden_size=768, patch_size=8, num_heads=12),
                          "DiT-B/8 (DiT Table 1): hidden 768, depth 12, 12 heads, patch 8.", __name__)
dit_s_2 = register_preset("dit_s_2", DiT, dict(depth=12, hidden_size=384, patch_size=2, num_heads=6),
                          "DiT-S/2 (DiT Table 1): hidden 384, depth 12, 6 heads, patch 2.", __name__)
dit_s_4 = register_preset("dit_s_4", DiT, dict(depth=12, hidden_size=384, patch_size=4, num_heads=6),
                          "DiT-S/4 (DiT Table 1): hidden 384, depth 12, 6 heads, patch 4.", __name__)
dit_s_8 = register_preset("dit_s_8", DiT, dict(depth=12, hidden_size=384, patch_size=8, num_heads=6),
                          "DiT-S/8 (DiT Table 1): hidden 384, depth 12, 6 heads, patch 8.", __name__)
