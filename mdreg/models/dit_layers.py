"""Building blocks of DiT (Peebles & Xie 2023, sec. 3.2) shared by ``dit`` and ``maskdit``.

* adaLN-Zero block: LayerNorm without affine (eps 1e-6); the condition ``c`` goes through
  SiLU + Linear to six chunks (shift, scale, gate) for attention, then (shift, scale, gate)
  for the MLP; ``x + gate * f(LN(x) * (1 + scale) + shift)``. MLP uses tanh-GELU.
* :class:`AdaLNLinear`: LayerNorm, adaLN shift/scale (two chunks), Linear — DiT's final
  layer, and MaskDiT's "decoder layer" (sec. 2.2) between encoder and decoder.
* Time: sinusoidal embedding with 256 frequencies (``[cos | sin]``) + MLP (Linear, SiLU, Linear).
* Labels: DiT's table with one extra row, the null class, at index ``num_classes``; MaskDiT's
  bias-free Linear on one-hot labels, whose null class is the all-zero vector.

Parameter names follow the official DiT/MaskDiT state dicts (``adaLN_modulation.1``,
``mlp.0``/``mlp.2``, ``embedding_table``), so their checkpoints load without renaming.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Attention
from torch import nn

from mdreg.models.layers import timestep_embedding


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample (B, D) shift/scale over (B, N, D) tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def adaln_projection(cond_dim: int, chunks: int, dim: int) -> nn.Sequential:
    """SiLU + Linear(cond_dim -> chunks * dim); index 1 is the Linear (official key ``adaLN_modulation.1``)."""
    return nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, chunks * dim))


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the (possibly fractional) time input + a two-layer MLP (DiT sec. 3.2)."""

    def __init__(self, hidden_size: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t_freq = timestep_embedding(t, self.frequency_dim).to(self.mlp[0].weight.dtype)  # (B, frequency_dim)
        return self.mlp(t_freq)  # (B, D)


class LabelEmbedder(nn.Module):
    """DiT labels: ``Embedding(num_classes + 1, hidden)``; row ``num_classes`` is the null class.

    Label dropout happens in the trainer (it replaces labels with ``net.null_label``), so the
    module itself is deterministic.
    """

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(y)  # (B, D)


class OneHotLabelEmbedder(nn.Module):
    """MaskDiT labels: ``Linear(num_classes -> hidden, bias=False)`` applied to one-hot labels.

    Index ``num_classes`` (the null label) maps to the all-zero one-hot vector, i.e. a zero
    embedding (MaskDiT's unconditional input). Evaluated as a row lookup, which equals the
    matrix product with a one-hot vector exactly.
    """

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = nn.Linear(num_classes, hidden_size, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        weight = self.embedding_table.weight  # (D, num_classes)
        table = torch.cat([weight.t(), weight.new_zeros(1, weight.shape[0])])  # (num_classes + 1, D), null row 0
        return F.embedding(y, table)  # (B, D)


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning (DiT fig. 3); ``cond_dim`` may differ from
    ``hidden_size`` (MaskDiT's 512-wide decoder blocks read the 1152-d condition)."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, cond_dim: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(in_features=hidden_size, hidden_features=int(hidden_size * mlp_ratio),
                       act_layer=partial(nn.GELU, approximate="tanh"))
        self.adaLN_modulation = adaln_projection(cond_dim or hidden_size, 6, hidden_size)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        modulation = self.adaLN_modulation(c).chunk(6, dim=1)  # 6 x (B, D)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation  # (B, D) each
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))  # (B, N, D)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))  # (B, N, D)
        return x


class AdaLNLinear(nn.Module):
    """LayerNorm (no affine) -> adaLN shift/scale from ``c`` -> Linear: DiT's final layer and
    MaskDiT's decoder layer (official keys ``linear.*``, ``adaLN_modulation.1.*``)."""

    def __init__(self, hidden_size: int, out_features: int, cond_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, out_features)
        self.adaLN_modulation = adaln_projection(cond_dim or hidden_size, 2, hidden_size)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # (B, D) each
        x = modulate(self.norm(x), shift, scale)  # (B, N, D)
        return self.linear(x)  # (B, N, out_features)

    def zero_(self) -> None:
        """adaLN-Zero initialisation: the layer outputs zeros until trained."""
        for p in (*self.adaLN_modulation[-1].parameters(), *self.linear.parameters()):
            nn.init.zeros_(p)
