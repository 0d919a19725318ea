"""Learning-rate multipliers: ``schedule(step, total_steps) -> factor`` times the optimizer's lr.

Linear warmup from ``warmup_start`` x lr to lr over ``warmup_steps``, then constant (MaskDM,
MaskDiT) or cosine decay to ``min_factor`` x lr. Computed from the step alone, so resuming
needs no scheduler state.
"""
from __future__ import annotations

import math

from mdreg.registry import LR_SCHEDULES


class WarmupSchedule:
    """Linear warmup shared by the schedules below."""

    def __init__(self, warmup_steps: int = 0, warmup_start: float = 0.0):
        if warmup_steps < 0 or not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"need warmup_steps >= 0 and 0 <= warmup_start <= 1, got {warmup_steps}, {warmup_start}")
        self.warmup_steps, self.warmup_start = warmup_steps, warmup_start

    def warmup(self, step: int) -> float | None:
        if step < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * (step + 1) / self.warmup_steps
        return None


@LR_SCHEDULES.register("constant", aliases=("warmup_constant",))
class WarmupConstant(WarmupSchedule):
    """Linear warmup then a constant lr (MaskDM Table 5; MaskDiT: constant 1e-4, no warmup)."""

    def __call__(self, step: int, total_steps: int) -> float:
        return self.warmup(step) or 1.0


@LR_SCHEDULES.register("cosine", aliases=("warmup_cosine",))
class WarmupCosine(WarmupSchedule):
    """Linear warmup then cosine decay towards ``min_factor``. ``step`` is 0-based, and the
    factor reaches ``min_factor`` at ``step = total_steps``, one past the last step (as timm's
    schedulers do), so no step trains at the floor, which is 0 by default."""

    def __init__(self, warmup_steps: int = 0, warmup_start: float = 0.0, min_factor: float = 0.0):
        super().__init__(warmup_steps, warmup_start)
        self.min_factor = min_factor

    def __call__(self, step: int, total_steps: int) -> float:
        warm = self.warmup(step)
        if warm is not None:
            return warm
        span = max(1, total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
