"""Parameter tables and forward FLOPs of backbones, counted by fvcore.

fvcore counts one fused multiply-add as one flop, so its totals are MACs ("GFLOPs" in the
DiT and MaskDiT papers are these numbers: DiT-XL/2 118.6, MaskDiT-XL/2 at 50% mask 65.5
per 256px image). Attention through ``scaled_dot_product_attention`` is counted by
:func:`sdpa_macs` as the two matmuls ``Q K^T`` and ``softmax(.) V``. Elementwise ops
(softmax, GELU, adds) are not counted (fvcore's default), and neither are normalisation
layers (the papers' convention: fvcore would add 0.07 GMACs of LayerNorm to DiT-XL/2's
118.62, which the DiT paper reports as 118.6).

fvcore traces a real forward pass. A model built on the ``meta`` device (the cheap way to
build XL sizes) is copied and materialised on the CPU with zero weights first; DiT-XL/2
then takes about 5 s on two cores. Masked cost uses the exact count of visible tokens,
``N - floor(ratio * N)``.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from mdreg.masking import num_masked


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: q (..., L, d), k (..., S, d),
    v (..., S, dv) -> L*S*d + L*S*dv MACs per batch-head."""
    q, k, v = (inputs[i].type().sizes() for i in range(3))
    batch_heads = 1
    for size in q[:-2]:
        batch_heads *= size
    return batch_heads * q[-2] * k[-2] * (q[-1] + v[-1])


def model_device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device


def example_inputs(model: nn.Module, batch: int = 1, mask_ratio: float = 0.0, seed: int = 0) -> tuple:
    """``(x, t, y, ids_keep)`` shaped for ``model`` (a backbone with the mdreg forward contract)."""
    device = model_device(model)
    height, width = getattr(model, "input_hw", None) or (model.img_size, model.img_size)  # toys: 1 x D points
    x = torch.zeros(batch, model.in_chans, height, width, device=device)
    t = torch.zeros(batch, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device) if getattr(model, "num_classes", 0) else None
    ids_keep = None
    n = model.grid_size[0] * model.grid_size[1]
    masked = num_masked(mask_ratio, n)
    if masked:
        generator = torch.Generator().manual_seed(seed)
        ids_keep = torch.rand(batch, n, generator=generator).argsort(dim=1)[:, :n - masked].sort(dim=1).values
        ids_keep = ids_keep.to(device)
    return x, t, y, ids_keep


def zero_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """Handle for operators deliberately left out of the count (normalisation layers)."""
    return 0


NOT_COUNTED = ("aten::layer_norm", "aten::group_norm", "aten::batch_norm", "aten::instance_norm")


def materialised(model: nn.Module) -> nn.Module:
    """``model`` itself, or for a model on the meta device a CPU copy with zero weights."""
    if model_device(model).type != "meta":
        return model
    real = copy.deepcopy(model).to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*real.parameters(), *real.buffers()):
            tensor.zero_()
    return real


def _fvcore_nn():
    """fvcore.nn, imported on first use (slow; its import scripts a function with
    ``torch.jit.script``, which recent torch flags with a FutureWarning users need not see)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import fvcore.nn
    return fvcore.nn


def flop_analysis(model: nn.Module, batch: int = 1, mask_ratio: float = 0.0):
    """fvcore's ``FlopCountAnalysis`` of one forward pass (per-module and per-operator breakdowns)."""
    FlopCountAnalysis = _fvcore_nn().FlopCountAnalysis

    model = materialised(model)
    analysis = FlopCountAnalysis(model, example_inputs(model, batch, mask_ratio))
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_macs)
    analysis.set_op_handle(**{name: zero_macs for name in NOT_COUNTED})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis


def forward_gmacs(model: nn.Module, batch: int = 1, mask_ratio: float = 0.0) -> float:
    """GMACs of one forward pass of ``batch`` samples at ``mask_ratio`` (patch masking).

    ``model`` is a backbone instance, ideally built under ``torch.device("meta")``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent shapes
            return flop_analysis(model, batch, mask_ratio).total() / 1e9
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    """All parameters, including non-trainable ones such as fixed sin-cos positions (as the papers count)."""
    return sum(p.numel() for p in model.parameters())


def parameter_table(model: nn.Module, max_depth: int = 2) -> str:
    """fvcore's per-module parameter table."""
    parameter_count_table = _fvcore_nn().parameter_count_table

    return parameter_count_table(model, max_depth=max_depth)
