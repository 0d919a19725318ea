#!/usr/bin/env python
"""Which scaled-dot-product-attention kernel is fastest for our shapes (fwd + bwd, bf16)?

    python tools/perf/attention_backends.py

Shapes: MaskDiT-XL/2 encoder at 50% mask (B128, 16 heads, 128 tokens, head dim 72) and its
decoder (256 tokens, head dim 32), DiT-XL/2 (B64, 256 tokens, dim 72), MaskDM-B at 70% mask
(B32, 12 heads, 1229 visible + 1 time token, dim 64) and unmasked (4097 tokens).
Prints ms per fwd+bwd (median of 20 after 5 warm-ups) for each available backend.
"""
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {"maskdit enc": (128, 16, 128, 72), "maskdit dec": (128, 16, 256, 32), "dit": (64, 16, 256, 72),
          "maskdm-b 70%": (32, 12, 1230, 64), "maskdm-b full": (32, 12, 4097, 64)}
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def time_backend(shape, backend) -> float | None:
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    try:
        with sdpa_kernel([backend]):
            def run():
                out = F.scaled_dot_product_attention(q, k, v)
                out.backward(grad)
            for _ in range(5):
                run()
            torch.cuda.synchronize()
            times = []
            for _ in range(20):
                start = time.perf_counter()
                run()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        return None if "No available kernel" in str(exc) or "out of memory" in str(exc) else float("nan")
    return 1e3 * statistics.median(times)


def main() -> None:
    print(f"{'shape':16s}" + "".join(f"{b:>11s}" for b in BACKENDS))
    for name, shape in SHAPES.items():
        row = [time_backend(shape, b) for b in BACKENDS.values()]
        print(f"{name:16s}" + "".join(f"{'-' if t is None else f'{t:.3f}':>11s}" for t in row))
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
