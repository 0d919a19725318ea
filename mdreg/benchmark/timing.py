"""Timing a training step properly: warm-up, then the median of several timed windows.

GPU work is asynchronous, so each window is closed by a device synchronisation before the
host clock is read. The bf16 matmul peak is measured in the same process (an 8192^3
product, median of 10 after warm-up) so that MFU compares against this card as found.
"""
from __future__ import annotations

import statistics
import time

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype = torch.bfloat16, n: int = 8192,
                       reps: int = 10) -> float:
    """Measured dense matmul rate (TFLOP/s) on random data; CPU: float32 at n=1024."""
    if device.type != "cuda":
        dtype, n, reps = torch.float32, 1024, 3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e12


def time_windows(step, device: torch.device, warmup: int, windows: int, window_steps: int) -> list[float]:
    """Seconds per window of ``window_steps`` calls of ``step()`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    synchronize(device)
    out = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(window_steps):
            step()
        synchronize(device)
        out.append(time.perf_counter() - start)
    return out


def peak_memory_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 1e9


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
