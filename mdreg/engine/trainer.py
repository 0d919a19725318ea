"""The training loop of one stage.

One step: take the step's batch (a pure function of seed and step, see
:mod:`mdreg.engine.data_order`), augment and transform it, draw the stage's mask, call the
objective, back-propagate (with gradient accumulation and autocast), clip, step AdamW at
the scheduled lr and update the EMA. Every random draw comes from one generator whose
state goes into each checkpoint, so relaunching the same command resumes from the last
checkpoint and repeats the uninterrupted run's losses exactly (CPU, same seed).
"""
from __future__ import annotations

import contextlib
import math
import time
import zlib
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import DictConfig

from mdreg.config import instantiate
from mdreg.engine.checkpoint import CheckpointManager, load_checkpoint
from mdreg.engine.data_order import StepBatchSampler
from mdreg.engine.distributed import DistEnv, setup
from mdreg.engine.ema import EMA
from mdreg.engine.handoff import initial_weights
from mdreg.engine.monitor import Monitor
from mdreg.engine.stage import TrainStage
from mdreg.errors import UserError
from mdreg.evaluation.sampling import sample_grid
from mdreg.masking import num_masked, visible_ids
from mdreg.rng import rand


class TrainingDiverged(UserError):
    """The loss or gradient became NaN/inf; the last good checkpoint is kept."""


def stage_seed(seed: int, stage_name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(stage_name.encode())) % (2 ** 31)


def effective_steps(cfg: DictConfig, stage_name: str) -> int:
    """The stage's steps, capped by ``train.max_steps`` when that is set."""
    steps = int(cfg.stages[stage_name].steps)
    cap = cfg.train.get("max_steps")
    return min(steps, int(cap)) if cap else steps


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
        if self.tcfg.get("tf32", True) and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(self.seed)  # model initialisation
        self.model = instantiate(cfg.model, key="model").to(self.device)
        self.dataset = self.stage.dataset or instantiate(cfg.data.dataset, key="data.dataset")
        self.transform = instantiate(cfg.data.transform, key="data.transform")
        self._check_shapes()
        self.ema = EMA(self.model, **self.stage.ema)
        opt_factory = self.stage.optimizer or (lambda params: torch.optim.AdamW(params, lr=1e-4))
        self.optimizer = opt_factory(self.model.parameters())
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.stage.precision == "fp16")
        self.generator = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.ckpt = CheckpointManager(self.dir / "checkpoints", keep_last=int(self.tcfg.get("keep_last", 2)),
                                      milestone_every=self.tcfg.get("milestone_every"))
        self.step = 0
        self.stop_requested = False
        self.monitor = Monitor(self.dir, stage_name, self.total, enabled=self.env.is_main)
        self.last_good: Path | None = None
        self._restore_or_init()

    # -- setup -------------------------------------------------------------------------
    def _check_shapes(self) -> None:
        channels, res = self.transform.output_shape(self.dataset.channels, self.dataset.resolution)
        want = (getattr(self.model, "in_chans", channels), getattr(self.model, "img_size", res))
        if (channels, res) != tuple(want):
            raise UserError(f"model expects {want[0]}x{want[1]}x{want[1]} inputs but data gives {channels}x{res}x{res} "
                            f"(after data.transform); set model.img_size/model.in_chans or the dataset resolution")
        self.sample_shape = (channels, res, res)

    def _restore_or_init(self) -> None:
        latest = self.ckpt.latest()
        if latest is not None:
            state = load_checkpoint(latest, map_location=self.device)
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.generator.set_state(state["rng"]["generator"].to("cpu"))
            self.step = int(state["step"])
            self.last_good = latest
            self.monitor.event({"event": "resume", "step": self.step, "checkpoint": str(latest)})
            print(f"[{self.name}] resumed from {latest} (step {self.step}/{self.total})")
        elif self.stage.init_from is not None:
            report = initial_weights(self, self.stage.init_from)
            print(f"[{self.name}] initialised from {report}")
            self.monitor.event({"event": "init_from", "source": report})

    # -- one step ----------------------------------------------------------------------
    def autocast(self):
        if self.stage.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.stage.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x.to(self.device, non_blocking=True)
        hflip = self.stage.hflip if self.stage.hflip is not None else float(self.cfg.data.get("hflip", 0.0))
        if hflip > 0:
            flip = rand((x.shape[0],), self.generator, self.device) < hflip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = self.transform.encode(x, self.generator)
        if not getattr(self.model, "num_classes", 0):
            return x, None
        y = y.to(self.device, non_blocking=True)
        if self.stage.label_dropout > 0:
            drop = rand((y.shape[0],), self.generator, self.device) < self.stage.label_dropout
            y = torch.where(drop, torch.full_like(y, self.model.null_label), y)
        return x, y

    def set_lr(self, step: int) -> float:
        factor = self.stage.lr_schedule(step, self.stage.steps) if self.stage.lr_schedule else 1.0
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        return self.base_lrs[0] * factor

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step on this rank's batch; returns (loss, grad norm, lr)."""
        lr = self.set_lr(self.step)
        ratio = self.stage.mask_ratio(self.step)
        grid = self.model.grid_size
        n_tokens = grid[0] * grid[1]
        keep = n_tokens - num_masked(ratio, n_tokens)
        total_loss = torch.zeros((), device=self.device)
        accum = self.stage.grad_accum
        for xs, ys in zip(x.chunk(accum), (y.chunk(accum) if y is not None else [None] * accum)):
            ids_keep = None
            if keep < n_tokens:
                mask = self.stage.masker(xs.shape[0], grid, self.generator, self.device, ratio=ratio)
                ids_keep = visible_ids(mask, keep)
            with self.autocast():
                out = self.stage.objective(self.model, xs, ys, ids_keep=ids_keep, generator=self.generator)
            self.scaler.scale(out.loss / accum).backward()
            total_loss += out.loss.detach().float() / accum
        self.scaler.unscale_(self.optimizer)
        max_norm = self.stage.grad_clip if self.stage.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
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
            print(f"[{self.name}] already complete ({self.step}/{self.total} steps)")
            return {"step": self.step, "complete": True}
        log_every = int(self.tcfg.get("log_every", 10))
        ckpt_every = int(self.tcfg.get("ckpt_every", 0) or 0)
        sample_every = self.stage.sample.get("every")
        self.monitor.event({"event": "start", "step": self.step, "total_steps": self.total})
        self.monitor.start(self.step)
        self.model.train()
        loss_sum, bad_step = torch.zeros((), device=self.device), torch.full((), -1, device=self.device)
        n_logged, t_last, last = 0, time.perf_counter(), {}
        for x, y in self.loader():
            xb, yb = self.prepare_batch(x, y)
            loss, grad_norm, lr = self.train_step(xb, yb)
            finite = torch.isfinite(loss) & (torch.isfinite(grad_norm) | torch.tensor(self.scaler.is_enabled()))
            bad_step = torch.where(~finite & (bad_step < 0), torch.full_like(bad_step, self.step), bad_step)
            loss_sum += loss
            n_logged += 1
            done = self.step >= self.total
            stop = self._stop_agreed()
            if self.step % log_every == 0 or done:
                self._check_finite(bad_step)
                now = time.perf_counter()
                last = {"loss": float(loss_sum) / n_logged, "lr": lr, "grad_norm": float(grad_norm),
                        "images_per_s": n_logged * self.stage.batch_size / max(now - t_last, 1e-9),
                        "mask_ratio": self.stage.mask_ratio(self.step - 1)}
                self.monitor.log(self.step, last)
                loss_sum.zero_()
                n_logged, t_last = 0, now
            if done or stop or (ckpt_every and self.step % ckpt_every == 0):
                self._check_finite(bad_step)
                self.save()
            if sample_every and self.step % int(sample_every) == 0 and not done:
                self.save_samples()
            if stop:
                print(f"[{self.name}] stopped at step {self.step} on request; checkpoint saved")
                self.monitor.close()
                return {"step": self.step, "complete": False, **last}
        self.save_samples()
        self.monitor.event({"event": "end", "step": self.step, **last})
        self.monitor.close()
        return {"step": self.step, "complete": True, **last}

    def request_stop(self) -> None:
        """Ask :meth:`fit` to save a checkpoint and return at the next step boundary.
        It only sets a flag, so a signal handler may call it."""
        self.stop_requested = True

    def _stop_agreed(self) -> bool:
        """Whether to stop after this step. With several ranks, a request on any rank stops
        all of them after the same step (one all-reduce of a flag per step)."""
        if not self.env.distributed:
            return self.stop_requested
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.stop_requested = bool(flag.item())
        return self.stop_requested

    def _check_finite(self, bad_step: torch.Tensor) -> None:
        bad = int(bad_step)
        if bad >= 0:
            self.monitor.event({"event": "diverged", "step": bad})
            self.monitor.close()
            keep = f"the last good checkpoint is {self.last_good}" if self.last_good else "no checkpoint was written"
            raise TrainingDiverged(
                f"stage {self.name!r}: the loss or gradient became NaN/inf at step {bad}; training stopped and "
                f"{keep}. Try a lower lr, grad_clip, or precision=bf16 instead of fp16")

    # -- outputs -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        rng = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "step": self.step, "total_steps": self.total, "stage": self.name, "rng": rng}

    def save(self) -> Path | None:
        if not self.env.is_main:
            return None
        if self.last_good is not None and self.last_good.name == f"step_{self.step:08d}.pt":
            return self.last_good
        self.last_good = self.ckpt.save(self.state_dict(), self.step)
        return self.last_good

    def save_samples(self) -> Path | None:
        """A PNG grid of EMA samples with the stage's sampler (rank 0 only)."""
        if not self.env.is_main or self.stage.sample.get("sampler") is None:
            return None
        path = self.dir / "samples" / f"step_{self.step:08d}.png"
        grid = sample_grid(self, path)
        self.monitor.image("samples", grid, self.step)
        return path
