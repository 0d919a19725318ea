"""Process-wide numeric switches, set once per process by the executors (not by stages).

* ``train.tf32`` allows TensorFloat-32 matmuls/convolutions on Ampere+ GPUs (the default, as
  in MaskDiT); it has no effect on the CPU.
* ``train.sdpa_backends``: which attention kernels ``scaled_dot_product_attention`` may use.

PyTorch picks a backend per call among those enabled. On an H100 with torch 2.11 it picks
cuDNN for bf16, which we measured to be slower than FlashAttention-2 for MaskDiT's short
sequences and head dim 72 (see docs/performance.md). ``null`` keeps PyTorch's choice; a
list enables exactly those backends (``[flash, efficient, math]``), in PyTorch's own order
of preference among them. The math backend is always a valid fallback on CPUs.
"""
from __future__ import annotations

import torch

from mdreg.errors import ConfigError

BACKENDS = {"flash": "enable_flash_sdp", "efficient": "enable_mem_efficient_sdp", "cudnn": "enable_cudnn_sdp",
            "math": "enable_math_sdp"}


def configure_process(train, device: torch.device) -> None:
    """Apply the run's ``train.tf32`` and ``train.sdpa_backends`` to this process."""
    configure_tf32(bool(train.get("tf32", True)), device)
    configure_sdpa(train.get("sdpa_backends"))


def configure_tf32(enabled: bool, device: torch.device) -> None:
    """Allow (or forbid) TF32 in CUDA matmuls and cuDNN convolutions."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def configure_sdpa(backends: list[str] | None) -> None:
    if backends is None:
        return
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"train.sdpa_backends={list(backends)!r}: choose from {', '.join(BACKENDS)} (or null)")
    for name, switch in BACKENDS.items():
        getattr(torch.backends.cuda, switch)(name in backends)
