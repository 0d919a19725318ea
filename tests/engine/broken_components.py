"""Components registered by the tests (never by mdreg itself) whose constructors raise: a
masker (built when the run is planned) and a backbone that builds on the ``meta`` device
(the planner's check) but raises when built for real, on the training device."""
from __future__ import annotations

import torch

from mdreg.masking import PatchMasker
from mdreg.models.uvit import UViT
from mdreg.registry import BACKBONES, MASKERS

ERRORS = {"runtime": RuntimeError, "assertion": AssertionError, "key": KeyError}


@MASKERS.register("test_raises", force=True)
class RaisingMasker(PatchMasker):
    """Raises ``ERRORS[error]`` in its constructor."""

    def __init__(self, ratio: float = 0.5, error: str = "runtime"):
        raise ERRORS[error]("the mask table could not be built")


@BACKBONES.register("test_raises_off_meta", force=True)
class RaisingOffMeta(UViT):
    """U-ViT that raises ``ERRORS[error]`` unless built on the meta device."""

    def __init__(self, error: str = "runtime", **kw):
        if torch.empty(0).device.type != "meta":
            raise ERRORS[error]("no kernel for this device")
        super().__init__(**kw)
