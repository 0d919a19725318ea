"""Forward GMACs of a backbone with fvcore: a stand-in for ``mdreg.models.flops.forward_gmacs``.

:mod:`mdreg.launch.estimate` imports ``forward_gmacs`` from :mod:`mdreg.models.flops` (the
components' FLOP counter) and falls back to this module only where that one is absent, so
both count with the same contract: ``forward_gmacs(model, batch=1, mask_ratio=0.0) -> float``,
the GMACs (fvcore counts one multiply-add as one flop; the "GFLOPs" of the DiT/MaskDiT
papers) of one forward pass of ``batch`` samples with ``N - floor(ratio * N)`` visible
tokens. Attention via ``scaled_dot_product_attention`` counts its two matmuls.
"""
from __future__ import annotations

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from mdreg.masking import num_masked


def sdpa_macs(inputs, outputs) -> int:
    """q (..., L, d), k (..., S, d), v (..., S, dv) -> L*S*d + L*S*dv MACs per batch-head."""
    q, k, v = (get_shape(inputs[i]) for i in range(3))
    batch_heads = 1
    for size in q[:-2]:
        batch_heads *= size
    return batch_heads * q[-2] * k[-2] * (q[-1] + v[-1])


def _on_cpu(model: nn.Module) -> nn.Module:
    """A model built on the meta device gets uninitialised CPU storage: values do not matter
    for counting, and nothing is initialised."""
    if next(iter(model.parameters())).device.type == "meta":
        return model.to_empty(device="cpu")
    return model


@torch.no_grad()
def forward_gmacs(model: nn.Module, batch: int = 1, mask_ratio: float = 0.0) -> float:
    """GMACs of one forward pass of ``batch`` samples at ``mask_ratio`` (visible tokens only)."""
    model = _on_cpu(model)
    device = next(iter(model.parameters())).device
    n = model.grid_size[0] * model.grid_size[1]
    keep = n - num_masked(mask_ratio, n)
    x = torch.zeros(batch, model.in_chans, *_spatial(model), device=device)
    t = torch.zeros(batch, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device) if getattr(model, "num_classes", 0) else None
    ids_keep = torch.arange(keep, device=device).expand(batch, keep) if keep < n else None
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, (x, t, y, ids_keep))
        analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_macs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total() / 1e9
    finally:
        model.train(was_training)


def _spatial(model: nn.Module) -> tuple[int, int]:
    """(H, W) of the model's input; a backbone may declare it (``input_hw``), e.g. the toy's 1 x D points."""
    hw = getattr(model, "input_hw", None)
    return tuple(hw) if hw is not None else (model.img_size, model.img_size)
