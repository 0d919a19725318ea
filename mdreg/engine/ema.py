"""Exponential moving average of the weights, the model every paper samples from.

``decay`` is applied once per ``every`` optimizer steps (MaskDM Table 5: "0.999 every 10");
before ``start`` the average simply copies the weights. Buffers are copied, not averaged.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def check_settings(decay: float, every: int, start: int) -> None:
    if not 0.0 <= decay < 1.0 or every < 1 or start < 0:
        raise ValueError(f"ema needs 0 <= decay < 1, every >= 1, start >= 0; got decay {decay}, every {every}, "
                         f"start {start}")


class EMA:
    """Keeps ``self.model``, a frozen copy of the trained model's weights, averaged."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, every: int = 1, start: int = 0):
        check_settings(decay, every, start)
        self.decay, self.every, self.start = decay, every, start
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Call after optimizer step ``step`` (1-based count of steps done)."""
        if step % self.every:
            return
        src = [p.detach() for p in model.parameters()]
        dst = list(self.model.parameters())
        if step <= self.start:
            torch._foreach_copy_(dst, src)
        else:
            torch._foreach_lerp_(dst, src, 1.0 - self.decay)
        for b_dst, b_src in zip(self.model.buffers(), model.buffers()):
            b_dst.copy_(b_src)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
