"""How fast a dataset feeds the trainer: samples/s through the trainer's own access path.

Batches come from :class:`mdreg.engine.step.StepBatchSampler` (shuffled global
batches, exactly what training reads) through a DataLoader and default collation; the
first batch is excluded from the timing. ``python tools/bench_data.py STORE`` runs it on a
latent store; ``--make N`` first writes a store of N random moment tensors (SD-VAE shape
8x32x32 float16 by default) to measure the format itself.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mdreg.data.latents import LatentStoreWriter
from mdreg.engine.step import StepBatchSampler


def make_random_store(folder: str | Path, count: int, shape=(8, 32, 32), num_classes: int = 1000, seed: int = 0,
                      chunk: int = 4096) -> Path:
    """A complete latent store of random moments and labels (benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    writer = LatentStoreWriter(folder, count, tuple(shape), num_classes=num_classes, image_resolution=shape[1] * 8,
                               scale_factor=0.18215, vae="random", source="random", seed=seed)
    while writer.done < count:
        n = min(chunk, count - writer.done)
        moments = torch.from_numpy(rng.standard_normal((n, *shape), dtype=np.float32))
        writer.append(moments, torch.from_numpy(rng.integers(0, num_classes, n)))
    return writer.finish()


def read_throughput(dataset, batch_size: int = 256, batches: int = 50, seed: int = 0, num_workers: int = 0,
                    pin_memory: bool = False) -> dict:
    """``{"samples_per_s", "mb_per_s", "batches", "batch_size"}`` reading ``batches`` shuffled batches.

    The clock starts once the loader has delivered the batches its workers fetch ahead
    (``1 + 2 x num_workers``: PyTorch's prefetch factor is 2), so only steady-state reading is timed."""
    skip = 1 + 2 * num_workers
    sampler = StepBatchSampler(len(dataset), batch_size, seed, 0, batches + skip)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                         pin_memory=pin_memory)
    nbytes, start = 0, None
    for i, (x, _) in enumerate(loader):
        if i == skip - 1:
            start = time.perf_counter()
        elif i >= skip:
            nbytes += x.numel() * x.element_size()
    elapsed = time.perf_counter() - start
    return {"samples_per_s": batches * batch_size / elapsed, "mb_per_s": nbytes / elapsed / 2 ** 20,
            "batches": batches, "batch_size": batch_size, "num_workers": num_workers}
