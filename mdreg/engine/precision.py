"""Numeric precision of a stage: autocast dtype and fp16 loss scaling.

``precision`` is a stage key: ``fp32`` (MaskDiT's unmasking tuning runs "full precision
(tf32)"), ``bf16`` (preferred mixed precision: no loss scaling, and the fp16 NaNs users hit
after long MaskDiT runs, issue #4, do not occur) or ``fp16`` (maskdm trains in fp16):
autocast to float16 with a :class:`torch.amp.GradScaler`, whose state is checkpointed so
that a resumed run scales exactly as the uninterrupted one. Parameters, optimizer state
and EMA stay float32 in every mode.

TF32 is a process-wide switch (``train.tf32``, :mod:`mdreg.engine.backends`).
"""
from __future__ import annotations

import contextlib

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("fp32", *DTYPES)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"precision must be one of {', '.join(MODES)}, got {mode!r}")


class Precision:
    """Autocast context and gradient scaler of one stage on one device."""

    def __init__(self, mode: str, device: torch.device):
        check_mode(mode)
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
