"""The training loop of one stage.

One optimizer step: take the step's global batch (a pure function of seed and step, see
:mod:`mdreg.engine.data_order`; this rank's contiguous slice of it), split it into
``grad_accum`` micro-batches, and for each: re-key the generator
(:mod:`mdreg.engine.randomness`), flip, encode (e.g. draw latents), drop labels for CFG,
draw the stage's mask, call the objective under autocast and back-propagate (DDP syncs
gradients on the last micro-batch only). Then unscale (fp16), clip, step AdamW at the
scheduled lr and update the EMA. Relaunching the same command resumes from the last
checkpoint and repeats the uninterrupted run's weights bit for bit (CPU).

Stopping (:meth:`Trainer.request_stop`, e.g. from a preemption signal handler) takes effect
at the next *step boundary*: the current optimizer step finishes (all micro-batches,
the update, the EMA), every rank agrees to stop after the same step, the checkpoint of
that step is written, and then the ``on_stop`` callbacks run on every rank (e.g. to
requeue the job). Saving in the middle of a step would lose accumulated gradients and the
position in the micro-batch streams, so it never happens.

A NaN/inf loss (or gradient, outside fp16 loss scaling) stops the run with
:class:`TrainingDiverged` naming the first bad step; it is detected before any checkpoint
or sample grid is written, so the last checkpoint on disk is the last good one.
"""
from __future__ import annotations

import contextlib
import time
import zlib
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig

from mdreg.config import instantiate
from mdreg.engine import ddp
from mdreg.engine.checkpoint import CheckpointManager, checkpoint_name, load_checkpoint
from mdreg.engine.data_order import StepBatchSampler
from mdreg.engine.distributed import DistEnv, setup
from mdreg.engine.ema import EMA
from mdreg.engine.kernels import configure_sdpa
from mdreg.engine.handoff import initial_weights
from mdreg.engine.monitor import Monitor
from mdreg.engine.optim import build_optimizer, describe
from mdreg.engine.precision import Precision, configure_tf32
from mdreg.engine.randomness import rekey
from mdreg.engine.stage import TrainStage
from mdreg.engine.state import collect, restore
from mdreg.engine.wrap import wrap
from mdreg.errors import ConfigError, UserError
from mdreg.evaluation.sampling import sample_grid
from mdreg.masking import num_masked, visible_ids
from mdreg.rng import rand


class TrainingDiverged(UserError):
    """The loss or gradient became NaN/inf; the last good checkpoint is kept."""


def gradient_norm(parameters, clip: float | None) -> torch.Tensor:
    """Total gradient norm (logged, and checked for NaN/inf), clipping to ``clip`` if set.
    Without clipping only the norm is computed: ``clip_grad_norm_(inf)`` would also rescale
    every gradient by 1 (a full read + write of the gradients, ~2 ms per step at 730M)."""
    if clip is not None:
        return torch.nn.utils.clip_grad_norm_(parameters, clip)
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def stage_seed(seed: int, stage_name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(stage_name.encode())) % (2 ** 31)


def effective_steps(cfg: DictConfig, stage_name: str) -> int:
    """The stage's steps, capped by ``train.max_steps`` when that is set."""
    steps = int(cfg.stages[stage_name].steps)
    cap = cfg.train.get("max_steps")
    return min(steps, int(cap)) if cap else steps


def micro_batch_size(stage: TrainStage, world: int, name: str) -> int:
    """Per-process micro-batch; the global batch must split evenly over ranks and accumulation."""
    parts = world * stage.grad_accum
    if stage.batch_size % parts:
        raise ConfigError(f"stages.{name}.batch_size={stage.batch_size} is the global batch and must be divisible "
                          f"by world size {world} x stages.{name}.grad_accum {stage.grad_accum} = {parts}; "
                          f"change the batch size, grad_accum or the number of GPUs")
    return stage.batch_size // parts


class Trainer:
    """Trains stage ``stage_name`` of the run whose folder is ``run_dir``."""

    def __init__(self, cfg: DictConfig, stage_name: str, run_dir: str | Path, env: DistEnv | None = None):
        self.cfg, self.name, self.tcfg = cfg, stage_name, cfg.train
        self.dir = Path(run_dir) / stage_name
        self.env = env or setup(self.tcfg.get("device", "auto"))
        self.device = self.env.device
        self.stage: TrainStage = instantiate(cfg.stages[stage_name], key=f"stages.{stage_name}")
        self.total = effective_steps(cfg, stage_name)
        self.seed = stage_seed(int(self.tcfg.seed), stage_name)
        self.micro_batch = micro_batch_size(self.stage, self.env.world_size, stage_name)
        configure_tf32(bool(self.tcfg.get("tf32", True)), self.device)
        configure_sdpa(self.tcfg.get("sdpa_backends"))

        torch.manual_seed(self.seed)  # model initialisation (identical on every rank)
        self.model = instantiate(cfg.model, key="model").to(self.device)
        self.dataset = self.stage.dataset or instantiate(cfg.data.dataset, key="data.dataset")
        self.transform = instantiate(cfg.data.transform, key="data.transform")
        check_dataset = getattr(self.transform, "check_dataset", None)  # e.g. the latent scale vs its store's
        if check_dataset is not None:
            check_dataset(self.dataset)
        self._check_shapes()
        self._check_labels()
        self.ema = EMA(self.model, **self.stage.ema)
        self.optimizer = build_optimizer(self.stage.optimizer, self.model.parameters(), self.device)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.precision = Precision(self.stage.precision, self.device)
        self.scaler = self.precision.scaler
        self.generator = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.ckpt = CheckpointManager(self.dir / "checkpoints", keep_last=int(self.tcfg.get("keep_last", 2)),
                                      milestone_every=self.tcfg.get("milestone_every"))
        self.step = 0
        self.stop_requested = False
        self.on_stop: list[Callable[[Trainer], None]] = []
        self.monitor = Monitor(self.dir, stage_name, self.total, enabled=self.env.is_main)
        self.last_good: Path | None = None
        self._saved_step = -1
        self._grids_note = False
        self._restore_or_init()
        self.net, self.ddp = wrap(self.model, self.env, self.tcfg.get("compile", False),
                                  bool(self.tcfg.get("find_unused_parameters", False)), self.tcfg.get("compile_mode"))
        self.stop_vote = ddp.StopVote()

    # -- setup -------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if self.env.is_main:
            print(f"[{self.name}] {text}", flush=True)

    def _check_shapes(self) -> None:
        channels, res = self.transform.output_shape(self.dataset.channels, self.dataset.resolution)
        want = (getattr(self.model, "in_chans", channels), getattr(self.model, "img_size", res))
        if (channels, res) != tuple(want):
            raise UserError(f"model expects {want[0]}x{want[1]}x{want[1]} inputs but data gives {channels}x{res}x{res} "
                            f"(after data.transform); set model.img_size/model.in_chans or the dataset resolution")
        self.sample_shape = (channels, res, res)

    def _check_labels(self) -> None:
        if self.stage.label_dropout > 0 and getattr(self.model, "null_label", None) is None:
            raise ConfigError(f"stages.{self.name}.label_dropout={self.stage.label_dropout} needs a class-conditional "
                              f"backbone with a null class (net.null_label) for classifier-free guidance; set it to 0 "
                              f"or use such a backbone")

    def _restore_or_init(self) -> None:
        latest = self.ckpt.latest()
        if latest is not None:
            for note in restore(self, load_checkpoint(latest, map_location="cpu")):
                self.say(f"note: {note}")
            self.last_good, self._saved_step = latest, self.step
            self.monitor.event({"event": "resume", "step": self.step, "checkpoint": str(latest)})
            self.say(f"resumed from {latest} (step {self.step}/{self.total})")
        elif self.stage.init_from is not None:
            source, notes = initial_weights(self, self.stage.init_from)
            self.say(f"initialised from {source}")
            for note in notes:
                self.say(f"  hand-off: {note}")
            self.monitor.event({"event": "init_from", "source": source, "adapted": notes})

    # -- control -----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the trainer to checkpoint and stop at the next step boundary (safe to call
        from a signal handler or another thread; any one rank asking stops all)."""
        self.stop_requested = True

    # -- one step ----------------------------------------------------------------------
    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Flip (MaskDM/MaskDiT: horizontal flips, p = ``hflip``), encode and drop labels
        of one micro-batch, drawing from the (already re-keyed) generator."""
        x = x.to(self.device, non_blocking=True)
        hflip = self.stage.hflip if self.stage.hflip is not None else float(self.cfg.data.get("hflip", 0.0))
        if hflip > 0:
            flip = rand((x.shape[0],), self.generator, self.device) < hflip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = self.transform.encode(x, self.generator)
        if not getattr(self.model, "num_classes", 0):
            return x, None
        y = y.to(self.device, non_blocking=True)
        if self.stage.label_dropout > 0:  # classifier-free guidance training (Ho & Salimans 2022)
            drop = rand((y.shape[0],), self.generator, self.device) < self.stage.label_dropout
            y = torch.where(drop, torch.full_like(y, self.model.null_label), y)
        return x, y

    def set_lr(self, step: int) -> float:
        factor = self.stage.lr_schedule(step, self.stage.steps) if self.stage.lr_schedule else 1.0
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        return self.base_lrs[0] * factor

    def _sync(self, last: bool):
        """DDP all-reduces gradients on the last micro-batch only."""
        return contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step on this rank's batch; returns (loss, grad norm, lr)."""
        lr = self.set_lr(self.step)
        ratio = self.stage.mask_ratio(self.step)
        grid = self.model.grid_size
        n_tokens = grid[0] * grid[1]
        keep = n_tokens - num_masked(ratio, n_tokens)
        total_loss = torch.zeros((), device=self.device)
        accum = self.stage.grad_accum
        for a, (xs, ys) in enumerate(zip(x.chunk(accum), y.chunk(accum))):
            rekey(self.generator, self.seed, self.step, self.env.rank * accum + a)
            xs, ys = self.prepare_batch(xs, ys)
            ids_keep = None
            if keep < n_tokens:
                mask = self.stage.masker(xs.shape[0], grid, self.generator, self.device, ratio=ratio)
                ids_keep = visible_ids(mask, keep)
            with self._sync(a == accum - 1):
                with self.precision.autocast():
                    out = self.stage.objective(self.net, xs, ys, ids_keep=ids_keep, generator=self.generator)
                self.scaler.scale(out.loss / accum).backward()
            total_loss += out.loss.detach().float() / accum
        self.scaler.unscale_(self.optimizer)
        grad_norm = gradient_norm(self.model.parameters(), self.stage.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.ema.update(self.model, self.step)
        return total_loss, grad_norm.detach(), lr

    # -- the loop ----------------------------------------------------------------------
    def loader(self):
        sampler = StepBatchSampler(len(self.dataset), self.stage.batch_size, self.seed, self.step, self.total,
                                   self.env.rank, self.env.world_size)
        workers = int(self.tcfg.get("num_workers", 0))
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=workers,
                                           pin_memory=self.device.type == "cuda", persistent_workers=False)

    def fit(self) -> dict:
        """Train until the stage's last step (or a stop request); returns the final metrics."""
        if self.step >= self.total:
            self.say(f"already complete ({self.step}/{self.total} steps)")
            return {"step": self.step, "complete": True}
        log_every = int(self.tcfg.get("log_every", 10))
        ckpt_every = int(self.tcfg.get("ckpt_every", 0) or 0)
        sample_every = self.stage.sample.get("every")
        self.monitor.event({"event": "start", "step": self.step, "total_steps": self.total,
                            "world_size": self.env.world_size, "micro_batch": self.micro_batch,
                            "optimizer": describe(self.optimizer), "precision": self.stage.precision})
        self.monitor.start(self.step)
        self.model.train()
        loss_sum, bad_step = torch.zeros((), device=self.device), torch.full((), -1, device=self.device)
        n_logged, t_last, last = 0, time.perf_counter(), {}
        skips_inf = torch.tensor(self.precision.skips_inf_steps, device=self.device)
        for x, y in self.loader():
            loss, grad_norm, lr = self.train_step(x, y)
            finite = torch.isfinite(loss) & (torch.isfinite(grad_norm) | skips_inf)
            bad_step = torch.where(~finite & (bad_step < 0), torch.full_like(bad_step, self.step), bad_step)
            loss_sum += loss
            n_logged += 1
            done = self.step >= self.total
            stop = not done and self.stop_vote.agree(self.stop_requested)
            if self.step % log_every == 0 or done or stop:
                self._check_finite(bad_step)
                now = time.perf_counter()
                last = {"loss": float(ddp.mean_over_ranks(loss_sum)) / n_logged, "lr": lr,
                        "grad_norm": float(grad_norm),
                        "images_per_s": n_logged * self.stage.batch_size / max(now - t_last, 1e-9),
                        "mask_ratio": self.stage.mask_ratio(self.step - 1)}
                self.monitor.log(self.step, last)
                loss_sum.zero_()
                n_logged, t_last = 0, now
            if done or stop or (ckpt_every and self.step % ckpt_every == 0):
                self._check_finite(bad_step)
                self.save()
            if sample_every and self.step % int(sample_every) == 0 and not done:
                self._check_finite(bad_step)
                self.save_samples()
            if stop:
                return self._stopped(last)
        self.save_samples()
        self.monitor.event({"event": "end", "step": self.step})
        self.monitor.close()
        return {"step": self.step, "complete": True, **last}

    def _stopped(self, last: dict) -> dict:
        ddp.barrier()  # the checkpoint is on disk before any rank acts on the stop
        where = f"checkpoint saved ({self.last_good})" if self.env.is_main else "rank 0 saved the checkpoint"
        print(f"[{self.name}] rank {self.env.rank}: stopped at step {self.step} on request; {where}", flush=True)
        self.monitor.event({"event": "stopped", "step": self.step, "checkpoint": str(self.last_good)})
        self.monitor.close()
        for callback in self.on_stop:
            callback(self)
        return {"step": self.step, "complete": False, **last}

    def _check_finite(self, bad_step: torch.Tensor) -> None:
        bad = int(ddp.max_over_ranks(bad_step))
        if bad >= 0:
            self.monitor.event({"event": "diverged", "step": bad})
            self.monitor.close()
            keep = f"the last good checkpoint is {self.last_good}" if self.last_good else "no checkpoint was written"
            raise TrainingDiverged(
                f"stage {self.name!r}: the loss or gradient became NaN/inf at step {bad}; training stopped and "
                f"{keep}. Try a lower lr, grad_clip, or precision=bf16 instead of fp16")

    # -- outputs -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The checkpoint contents (a collective in distributed runs), see :mod:`mdreg.engine.state`."""
        return collect(self)

    def save(self) -> Path | None:
        """Write the checkpoint of the current step (rank 0; every rank must call it)."""
        if self._saved_step == self.step:
            return self.last_good
        state = self.state_dict()
        self._saved_step = self.step
        if self.env.is_main:
            self.last_good = self.ckpt.save(state, self.step)
        else:
            self.last_good = self.ckpt.folder / checkpoint_name(self.step)
        return self.last_good

    def save_samples(self) -> Path | None:
        """A PNG grid of EMA samples with the stage's sampler (rank 0 only); skipped with a
        logged note when the data transform cannot decode to pixels (e.g. no VAE)."""
        if not self.env.is_main or self.stage.sample.get("sampler") is None:
            return None
        if not getattr(self.transform, "can_decode", True):
            if not self._grids_note:
                self._grids_note = True
                note = f"sample grids skipped: {self.transform!r} cannot decode to pixels (no VAE configured)"
                self.say(f"note: {note}")
                self.monitor.event({"event": "note", "step": self.step, "note": note})
            return None
        path = self.dir / "samples" / f"step_{self.step:08d}.png"
        grid = sample_grid(self, path)
        self.monitor.image("samples", grid, self.step)
        return path
