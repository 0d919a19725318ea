"""The ``haar_dwt`` transform (MaskDM sec. 4.3, appendix C): layout, scaling, exact inverse."""
from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from mdreg.registry import TRANSFORMS


def images(batch=3, size=8, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_layout_is_low_band_then_three_high_bands():
    x = images()
    coeffs = TRANSFORMS.get("haar_dwt")(scale=1.0).encode(x)
    assert coeffs.shape == (3, 12, 4, 4) and coeffs.dtype == x.dtype
    for b in range(3):
        low, (h, v, d) = pywt.dwt2(x[b].numpy(), "haar")
        assert np.allclose(coeffs[b].numpy(), np.concatenate([low, h, v, d]), atol=1e-6)


def test_default_scale_keeps_every_band_in_unit_range():
    x = torch.sign(images(size=16, seed=1))  # extreme pixels: +-1
    coeffs = TRANSFORMS.get("haar_dwt")().encode(x)
    assert coeffs.abs().max() <= 1.0 + 1e-6
    mean_2x2 = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(coeffs[:, :3], mean_2x2, atol=1e-6)  # low band = the 2x2 mean at scale 0.5


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_decode_inverts_encode(scale):
    t = TRANSFORMS.get("haar_dwt")(scale=scale)
    x = images(batch=2, size=32, seed=2)
    assert torch.allclose(t.decode(t.encode(x)), x, atol=1e-6)
    assert t.output_shape(3, 256) == (12, 128)


def test_bad_inputs():
    t = TRANSFORMS.get("haar_dwt")()
    with pytest.raises(ValueError, match="even image sides"):
        t.encode(torch.zeros(1, 3, 7, 8))
    with pytest.raises(ValueError, match="4 x C channels"):
        t.decode(torch.zeros(1, 10, 4, 4))
    with pytest.raises(ValueError, match="scale"):
        TRANSFORMS.get("haar_dwt")(scale=0)


def test_the_on_device_path_equals_pywavelets():
    """backend=torch (what GPU batches use) gives pywt's coefficients and inverse, in float32 and bfloat16."""
    x = images(batch=4, size=16, seed=3)
    reference, fast = TRANSFORMS.get("haar_dwt")(backend="pywt"), TRANSFORMS.get("haar_dwt")(backend="torch")
    coeffs = reference.encode(x)
    assert torch.allclose(fast.encode(x), coeffs, atol=1e-6)
    assert torch.allclose(fast.decode(coeffs), reference.decode(coeffs), atol=1e-6)
    assert torch.allclose(fast.decode(fast.encode(x)), x, atol=1e-6)
    half = fast.encode(x.bfloat16())
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), coeffs, atol=1e-2)


def test_auto_takes_pywavelets_on_the_cpu_and_refuses_unknown_backends():
    assert TRANSFORMS.get("haar_dwt")()._uses_pywt(torch.zeros(1))
    assert not TRANSFORMS.get("haar_dwt")(backend="torch")._uses_pywt(torch.zeros(1))
    with pytest.raises(ValueError, match="backend must be one of auto, pywt, torch"):
        TRANSFORMS.get("haar_dwt")(backend="numpy")
