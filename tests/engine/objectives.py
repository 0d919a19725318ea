"""Objectives registered by the tests (never by mdreg itself): deterministic, NaN-injecting
and spying variants of the DSM objective."""
from __future__ import annotations

import torch

from mdreg.diffusion.objectives import DSM, MDSM, LossOutput
from mdreg.rng import stream_seed
from mdreg.engine.stage import stage_seed
from mdreg.models.uvit import UViT
from mdreg.registry import BACKBONES, MASK_SCHEDULES, OBJECTIVES


@OBJECTIVES.register("test_deterministic", force=True)
class Deterministic:
    """No randomness: predict x itself at t = 0 (gradients depend on the data only)."""

    def __init__(self, schedule=None):
        self.schedule = schedule

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None):
        pred = net(x0, torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device), y, ids_keep=ids_keep)
        loss = ((pred.float() - x0.float()) ** 2).mean()
        return LossOutput(loss, {"loss": loss.detach()})


CALLS: list[dict] = []


@OBJECTIVES.register("test_spy", force=True)
class Spy(MDSM):
    """MDSM (DSM when unmasked) that records each call's inputs in ``CALLS``."""

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None):
        CALLS.append({"x": x0.detach().clone(), "y": None if y is None else y.detach().clone(),
                      "keep": None if ids_keep is None else ids_keep.shape[1]})
        return super().__call__(net, x0, y, ids_keep=ids_keep, generator=generator)


@OBJECTIVES.register("test_nan_at", force=True)
class NanAt(DSM):
    """DSM whose loss (mode ``loss``) or gradient (mode ``grad``) is NaN from call ``at`` on
    (1-based, one call per step without accumulation)."""

    def __init__(self, schedule, at: int = 5, mode: str = "loss"):
        super().__init__(schedule)
        self.at, self.mode, self.calls = at, mode, 0

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None):
        self.calls += 1
        out = super().__call__(net, x0, y, ids_keep=ids_keep, generator=generator)
        if self.calls >= self.at:
            if self.mode == "loss":
                out.loss = out.loss * float("nan")
            else:  # finite loss, NaN gradient: d/dp sqrt(0 * p) = inf * 0
                p = next(net.parameters()) if hasattr(net, "parameters") else net.pos_embed
                out.loss = out.loss + (p.sum() * 0.0).sqrt()
        return out


@OBJECTIVES.register("test_nan_steps", force=True)
class NanAtSteps(MDSM):
    """MDSM (DSM when unmasked) whose loss (mode ``loss``) or gradient (mode ``grad``) is NaN at the trainer's
    steps ``steps`` (1-based, as the trainer reports them) and finite elsewhere. The step is
    read from the generator's key (:func:`mdreg.rng.rekey`), so a resumed run
    sees the same NaN steps as an uninterrupted one; ``train_seed``/``stage`` give the key."""

    def __init__(self, schedule, steps=(), train_seed: int = 0, stage: str = "main", mode: str = "loss"):
        super().__init__(schedule)
        seed = stage_seed(int(train_seed), stage)
        self.keys = {stream_seed(seed, int(s) - 1, micro) for s in steps for micro in range(16)}
        self.mode = mode

    def __call__(self, net, x0, y=None, ids_keep=None, generator=None):
        out = super().__call__(net, x0, y, ids_keep=ids_keep, generator=generator)
        if generator is not None and generator.initial_seed() in self.keys:
            if self.mode == "loss":
                out.loss = out.loss * float("nan")
            else:  # finite loss, NaN gradient: d/dp sqrt(0 * p) = inf * 0
                out.loss = out.loss + (next(net.parameters()).sum() * 0.0).sqrt()
        return out


@MASK_SCHEDULES.register("test_linear_down", force=True)
class LinearDown:
    """base_ratio at step 0 falling linearly to 0 at the last step."""

    def __call__(self, step, total_steps, base_ratio):
        return base_ratio * (1 - step / max(1, total_steps - 1))


@BACKBONES.register("test_uvit_cfg", force=True)
class UViTWithNull(UViT):
    """A class-conditional U-ViT with one extra (null) class for CFG label dropout."""

    def __init__(self, num_classes: int = 4, **kwargs):
        super().__init__(num_classes=num_classes + 1, **kwargs)
        self.num_classes, self.null_label = num_classes, num_classes
