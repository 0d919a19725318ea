"""One optimizer step of a stage, as a function of its :class:`~mdreg.engine.parts.StageParts`: the
batches a step trains on, the module it calls, and the update.

Take this rank's slice of the step's global batch, split it into ``grad_accum``
micro-batches, and for each: re-key the generator (:mod:`mdreg.rng`), flip,
encode (e.g. draw latents), drop labels for CFG, draw the stage's mask, call the objective
under autocast and back-propagate (DDP syncs gradients on the last micro-batch only).
Then unscale (fp16), measure (and clip) the gradient norm, step the optimizer at the
scheduled lr and update the EMA.

``on_nonfinite="skip_step"``: when the loss or the gradient norm is NaN/inf, the optimizer
step and the EMA update are skipped (the gradients are dropped) and :class:`StepResult`
says so. Deciding that needs the two numbers on the host, one synchronisation per step,
which the default ``stop`` avoids (the trainer checks them at log and checkpoint steps).

The batches. Which samples each step trains on, as a pure function of (seed, step).

Epoch ``e`` visits the dataset in the order ``randperm(n, seed + e)``; the incomplete tail
batch of each epoch is dropped. Step ``s`` takes global batch ``s`` of that sequence, and
rank ``r`` of ``w`` takes the ``r``-th contiguous slice of it, so 2 processes see exactly
the samples 1 process would, and a resumed run starts where the interrupted one stopped
without saving any iterator state.

The module the objective calls (:func:`wrap`). Two handles on one set of parameters:

* ``parts.model`` — the plain ``nn.Module``. Checkpoints, the EMA, hand-off and
  sampling use it, so their keys never carry ``module.`` (DDP) or ``_orig_mod.``
  (``torch.compile``) prefixes — the prefix that breaks MaskDiT's sampling scripts after
  compiling;
* :attr:`Trainer.net <mdreg.engine.trainer.Trainer.net>` — what objectives call: ``DDP(model)`` across several processes, then
  ``torch.compile`` when ``train.compile`` is set (PyTorch's recommended order: compiling
  the DDP module lets dynamo split graphs at bucket boundaries).

Objectives read attributes such as ``net.patch_size``; :class:`ForwardProxy` forwards
calls to the wrapped module and attribute reads to the plain one, so an objective works
the same with or without wrappers (MaskDiT's loss only worked under DDP).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from mdreg.engine.distributed import max_over_ranks
from mdreg.engine.parts import StageParts
from mdreg.masking import visible_ids
from mdreg.rng import rand, rekey


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
    factor = parts.stage.lr_schedule(step, parts.stage.schedule_steps) if parts.stage.lr_schedule else 1.0
    for group, base in zip(parts.optimizer.param_groups, parts.base_lrs):
        group["lr"] = base * factor
    return parts.base_lrs[0] * factor


def prepare_batch(parts: StageParts, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip (MaskDM/MaskDiT: horizontal flips, p = ``hflip``), encode and drop labels of one
    micro-batch, drawing from the (already re-keyed) generator."""
    x = x.to(parts.device, non_blocking=True)
    if parts.stage.hflip > 0:
        flip = rand((x.shape[0],), parts.generator, parts.device) < parts.stage.hflip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = parts.transform.encode(x, parts.generator)
    if not getattr(parts.model, "num_classes", 0):
        return x, None
    y = y.to(parts.device, non_blocking=True)
    if parts.stage.label_dropout > 0:  # classifier-free guidance training (Ho & Salimans 2022)
        drop = rand((y.shape[0],), parts.generator, parts.device) < parts.stage.label_dropout
        y = torch.where(drop, torch.full_like(y, parts.model.null_label), y)
    return x, y


def train_step(parts: StageParts, net, step: int, x: torch.Tensor, y: torch.Tensor, rank: int = 0,
               ddp: torch.nn.parallel.DistributedDataParallel | None = None) -> StepResult:
    """Optimizer step ``step`` (0-based) on this rank's batch ``(x, y)``; ``net`` is what the
    objective calls (the model, or its DDP/compiled wrapper ``ddp``)."""
    lr = set_lr(parts, step)
    ratio, keep = parts.stage.mask_ratio(step), parts.num_visible(step)
    n_tokens = parts.grid[0] * parts.grid[1]
    total_loss = torch.zeros((), device=parts.device)
    accum = parts.stage.grad_accum
    for a, (xs, ys) in enumerate(zip(x.chunk(accum), y.chunk(accum))):
        rekey(parts.generator, parts.stage.seed, step, rank * accum + a)
        xs, ys = prepare_batch(parts, xs, ys)
        ids_keep = None
        if keep < n_tokens:
            mask = parts.stage.masker(xs.shape[0], parts.grid, parts.generator, parts.device, ratio=ratio)
            ids_keep = visible_ids(mask, keep)
        last = a == accum - 1
        with contextlib.nullcontext() if ddp is None or last else ddp.no_sync():
            with parts.precision.autocast():
                out = parts.stage.objective(net, xs, ys, ids_keep=ids_keep, generator=parts.generator)
            parts.precision.scaler.scale(out.loss / accum).backward()
        total_loss += out.loss.detach().float() / accum
    scaler = parts.precision.scaler
    scaler.unscale_(parts.optimizer)
    grad_norm = gradient_norm(parts.model.parameters(), parts.stage.grad_clip).detach()
    if parts.stage.on_nonfinite == "skip_step" and not _finite(total_loss, grad_norm, parts):
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


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batch_indices(n: int, global_batch: int, step: int, seed: int, rank: int = 0, world: int = 1,
                  shuffle: bool = True) -> list[int]:
    """Dataset indices that ``rank`` trains on at ``step``."""
    per_epoch = n // global_batch
    if per_epoch == 0:
        raise ValueError(f"the dataset has {n} samples, fewer than one global batch of {global_batch}")
    epoch, within = divmod(step, per_epoch)
    order = _epoch_order(n, seed, epoch) if shuffle else torch.arange(n)
    batch = order[within * global_batch:(within + 1) * global_batch]
    per_rank = global_batch // world
    return batch[rank * per_rank:(rank + 1) * per_rank].tolist()


class StepBatchSampler(Sampler[list[int]]):
    """Batch sampler for a DataLoader: the batches of steps ``start, start+1, ...``."""

    def __init__(self, n: int, global_batch: int, seed: int, start_step: int, end_step: int,
                 rank: int = 0, world: int = 1, shuffle: bool = True):
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by world size {world}")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.start, self.end, self.rank, self.world, self.shuffle = start_step, end_step, rank, world, shuffle

    def __iter__(self):
        for step in range(self.start, self.end):
            yield batch_indices(self.n, self.global_batch, step, self.seed, self.rank, self.world, self.shuffle)

    def __len__(self) -> int:
        return max(0, self.end - self.start)


class ForwardProxy:
    """Calls go to ``wrapped`` (DDP/compiled), attribute reads to ``module``."""

    def __init__(self, wrapped: nn.Module, module: nn.Module):
        self.__dict__.update(_wrapped=wrapped, _module=module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapped(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def compile_backend(setting: Any) -> str | None:
    """``train.compile``: false/null -> None, true -> ``inductor``, a string -> that backend
    (``aot_eager``/``eager`` compile without a C++ toolchain, useful to debug graph breaks)."""
    if setting is None or setting is False:
        return None
    return "inductor" if setting is True else str(setting)


def wrap(model: nn.Module, env, compile_setting: Any = False, find_unused_parameters: bool = False,
         compile_mode: str | None = None):
    """Returns ``(net, ddp)``: the callable objectives use and the DDP module (or None).
    ``compile_mode`` is torch.compile's ``mode`` (``max-autotune-no-cudagraphs``, ...)."""
    wrapped, ddp = model, None
    if env.distributed:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                  find_unused_parameters=find_unused_parameters)
        wrapped = ddp
    backend = compile_backend(compile_setting)
    if backend is not None:
        wrapped = torch.compile(wrapped, backend=backend, mode=compile_mode)
    return (model if wrapped is model else ForwardProxy(wrapped, model)), ddp
