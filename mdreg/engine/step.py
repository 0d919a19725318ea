"""One optimizer step of a stage, as a function of its :class:`~mdreg.engine.parts.StageParts`.

Take this rank's slice of the step's global batch, split it into ``grad_accum``
micro-batches, and for each: re-key the generator (:mod:`mdreg.engine.randomness`), flip,
encode (e.g. draw latents), drop labels for CFG, draw the stage's mask, call the objective
under autocast and back-propagate (DDP syncs gradients on the last micro-batch only).
Then unscale (fp16), measure (and clip) the gradient norm, step the optimizer at the
scheduled lr and update the EMA.

``on_nonfinite="skip_step"``: when the loss or the gradient norm is NaN/inf, the optimizer
step and the EMA update are skipped (the gradients are dropped) and :class:`StepResult`
says so. Deciding that needs the two numbers on the host, one synchronisation per step,
which the default ``stop`` avoids (the trainer checks them at log and checkpoint steps).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from mdreg.engine.ddp import max_over_ranks
from mdreg.engine.parts import StageParts
from mdreg.engine.randomness import rekey
from mdreg.masking import visible_ids
from mdreg.rng import rand


@dataclass
class StepResult:
    loss: torch.Tensor       # mean over this rank's micro-batches (detached, on the device)
    grad_norm: torch.Tensor  # before clipping
    lr: float
    skipped: bool = False    # on_nonfinite=skip_step dropped this update


def gradient_norm(parameters, clip: float | None) -> torch.Tensor:
    """Total gradient norm (logged, and checked for NaN/inf), clipping to ``clip`` if set.
    Without clipping only the norm is computed: ``clip_grad_norm_(inf)`` would also rescale
    every gradient by 1 (a full read + write of the gradients, ~2 ms per step at 730M)."""
    if clip is not None:
        return torch.nn.utils.clip_grad_norm_(parameters, clip)
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def set_lr(parts: StageParts, step: int) -> float:
    """Set every param group's lr for 0-based ``step``; returns the first group's."""
    factor = parts.lr_schedule(step, parts.schedule_steps) if parts.lr_schedule else 1.0
    for group, base in zip(parts.optimizer.param_groups, parts.base_lrs):
        group["lr"] = base * factor
    return parts.base_lrs[0] * factor


def prepare_batch(parts: StageParts, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip (MaskDM/MaskDiT: horizontal flips, p = ``hflip``), encode and drop labels of one
    micro-batch, drawing from the (already re-keyed) generator."""
    x = x.to(parts.device, non_blocking=True)
    if parts.hflip > 0:
        flip = rand((x.shape[0],), parts.generator, parts.device) < parts.hflip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = parts.transform.encode(x, parts.generator)
    if not getattr(parts.model, "num_classes", 0):
        return x, None
    y = y.to(parts.device, non_blocking=True)
    if parts.label_dropout > 0:  # classifier-free guidance training (Ho & Salimans 2022)
        drop = rand((y.shape[0],), parts.generator, parts.device) < parts.label_dropout
        y = torch.where(drop, torch.full_like(y, parts.model.null_label), y)
    return x, y


def train_step(parts: StageParts, net, step: int, x: torch.Tensor, y: torch.Tensor, rank: int = 0,
               ddp: torch.nn.parallel.DistributedDataParallel | None = None) -> StepResult:
    """Optimizer step ``step`` (0-based) on this rank's batch ``(x, y)``; ``net`` is what the
    objective calls (the model, or its DDP/compiled wrapper ``ddp``)."""
    lr = set_lr(parts, step)
    ratio, keep = parts.mask_ratio(step), parts.num_visible(step)
    n_tokens = parts.grid[0] * parts.grid[1]
    total_loss = torch.zeros((), device=parts.device)
    accum = parts.grad_accum
    for a, (xs, ys) in enumerate(zip(x.chunk(accum), y.chunk(accum))):
        rekey(parts.generator, parts.seed, step, rank * accum + a)
        xs, ys = prepare_batch(parts, xs, ys)
        ids_keep = None
        if keep < n_tokens:
            mask = parts.masker(xs.shape[0], parts.grid, parts.generator, parts.device, ratio=ratio)
            ids_keep = visible_ids(mask, keep)
        last = a == accum - 1
        with contextlib.nullcontext() if ddp is None or last else ddp.no_sync():
            with parts.precision.autocast():
                out = parts.objective(net, xs, ys, ids_keep=ids_keep, generator=parts.generator)
            parts.precision.scaler.scale(out.loss / accum).backward()
        total_loss += out.loss.detach().float() / accum
    scaler = parts.precision.scaler
    scaler.unscale_(parts.optimizer)
    grad_norm = gradient_norm(parts.model.parameters(), parts.grad_clip).detach()
    if parts.on_nonfinite == "skip_step" and not _finite(total_loss, grad_norm, parts):
        parts.optimizer.zero_grad(set_to_none=True)
        scaler.update()  # fp16: an overflow lowers the scale, as a skipped scaler step would
        return StepResult(total_loss, grad_norm, lr, skipped=True)
    scaler.step(parts.optimizer)
    scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    parts.ema.update(parts.model, step + 1)
    return StepResult(total_loss, grad_norm, lr)


def _finite(loss: torch.Tensor, grad_norm: torch.Tensor, parts: StageParts) -> bool:
    """Loss and gradient norm are finite on every rank (an inf gradient under fp16 loss
    scaling is routine: the scaler skips that update itself). All ranks agree, so they skip
    the same steps."""
    grads_ok = torch.isfinite(grad_norm) | torch.tensor(parts.precision.skips_inf_steps, device=grad_norm.device)
    bad = (~(torch.isfinite(loss) & grads_ok)).to(torch.int32)
    return not bool(max_over_ranks(bad))
