"""Random draws from an explicit generator, on the generator's own device.

The trainer owns one ``torch.Generator`` per process (on the training device) and saves
its state in checkpoints; drawing everything from it (noise, timesteps, masks, label
dropout, flips) is what makes a resumed run repeat an uninterrupted one exactly. Drawing
on the generator's device avoids host-to-device copies of large noise tensors.
"""
from __future__ import annotations

import torch


def _device(generator: torch.Generator | None, device) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def randn(shape, generator: torch.Generator | None = None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    out = torch.randn(shape, generator=generator, device=_device(generator, device), dtype=dtype)
    return out.to(device)


def rand(shape, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_device(generator, device)).to(device)


def randint(low: int, high: int, shape, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator, device=_device(generator, device)).to(device)
