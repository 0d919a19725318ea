"""Numeric precision of a stage: autocast dtype, fp16 loss scaling and the TF32 switch.

``precision`` is a stage key: ``fp32`` (MaskDiT's unmasking tuning runs "full precision
(tf32)"), ``bf16`` (preferred mixed precision: no loss scaling, and the fp16 NaNs users hit
after long MaskDiT runs, issue #4, do not occur) or ``fp16`` (maskdm trains in fp16):
autocast to float16 with a :class:`torch.amp.GradScaler`, whose state is checkpointed so
that a resumed run scales exactly as the uninterrupted one. Parameters, optimizer state
and EMA stay float32 in every mode.

``train.tf32`` allows TensorFloat-32 matmuls/convolutions on Ampere+ GPUs (the default, as
in MaskDiT); it has no effect on the CPU.
"""
from __future__ import annotations

import contextlib

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast context and gradient scaler of one stage on one device."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in ("fp32", *DTYPES):
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {mode!r}")
        self.mode, self.device = mode, device
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    def autocast(self):
        """The context the forward pass and loss run in."""
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.mode])

    @property
    def skips_inf_steps(self) -> bool:
        """fp16 loss scaling skips optimizer steps whose gradients overflowed (and lowers
        the scale): an inf gradient there is routine, not divergence."""
        return self.scaler.is_enabled()


def configure_tf32(enabled: bool, device: torch.device) -> None:
    """Allow (or forbid) TF32 in CUDA matmuls and cuDNN convolutions."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
