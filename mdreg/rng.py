"""Random draws from an explicit generator, on the generator's own device, and where each draw
of a training step comes from.

The trainer owns one ``torch.Generator`` per process (on the training device) and saves its
state in checkpoints; drawing everything from it (noise, timesteps, masks, label dropout,
flips) is what makes a resumed run repeat an uninterrupted one exactly. Drawing on the
generator's device avoids host-to-device copies of large noise tensors. Before each
micro-batch it re-keys that generator with ``(stage seed, step, micro-batch index)``, where
the micro-batch index counts micro-batches across the global batch: rank ``r`` with
``A`` accumulation steps processes micro-batches ``r*A .. r*A+A-1``, i.e. global samples
``[j*m, (j+1)*m)`` of the step's batch (``m`` = per-GPU micro-batch). Every draw of the
micro-batch — horizontal flips, latent sampling, label dropout, masks, timesteps, noise —
then comes from that generator. Consequences:

* a resumed run draws exactly what the uninterrupted run drew (the streams depend on the
  step only; the generator state is checkpointed too, for inspection and for consistency);
* with the same micro-batch size, ``W`` GPUs x ``A`` accumulation steps draws the same
  numbers for the same samples as any other ``W' x A'`` with ``W*A = W'*A'``: 2 GPUs
  without accumulation reproduce 1 GPU accumulating 2 micro-batches (up to float
  summation order), and a job may resume on a different number of GPUs;
* ranks and micro-batches draw from different, independent streams.
"""
from __future__ import annotations

import hashlib

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


def stream_seed(seed: int, step: int, micro: int) -> int:
    """A 63-bit seed for micro-batch ``micro`` of 0-based ``step`` (blake2b of the triple)."""
    digest = hashlib.blake2b(f"{seed}:{step}:{micro}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def rekey(generator: torch.Generator, seed: int, step: int, micro: int) -> torch.Generator:
    """Re-seed ``generator`` for micro-batch ``micro`` of ``step``; returns it."""
    return generator.manual_seed(stream_seed(seed, step, micro))
