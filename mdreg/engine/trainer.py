"""The training loop of one stage, over its :class:`~mdreg.engine.parts.StageParts`.

:meth:`Trainer.fit` reads top to bottom: restore the stage's newest checkpoint (or apply
its hand-off, :mod:`mdreg.engine.handoff`), open the logs, wrap the model (DDP, compile),
then repeat :func:`mdreg.engine.step.train_step` over the step-keyed batches
(:mod:`mdreg.engine.step`), logging every ``log_every`` steps, checkpointing every
``ckpt_every`` steps and at the end, and writing sample grids. Relaunching the same command
resumes from the last checkpoint and repeats the uninterrupted run's weights bit for bit (CPU).

Stopping (:meth:`Trainer.request_stop`, e.g. from a preemption signal handler) takes effect
at the next *step boundary*: the current optimizer step finishes (all micro-batches,
the update, the EMA), every rank agrees to stop after the same step, the checkpoint of
that step is written, and :meth:`fit` returns ``complete: False`` on every rank (the caller
then acts, e.g. requeues the Slurm job). Saving in the middle of a step would lose
accumulated gradients and the position in the micro-batch streams, so it never happens.

A NaN/inf loss (or gradient, outside fp16 loss scaling) stops the run with
:class:`TrainingDiverged` naming the first bad step (``on_nonfinite="stop"``); it is
detected before any checkpoint or sample grid is written, so the last checkpoint on disk is
the last good one. With ``on_nonfinite="skip_step"`` such steps are skipped and counted
(``skipped_steps`` in the logs and the checkpoint) and the run stops after
``max_skips_in_row`` consecutive skips.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from mdreg.engine.checkpoint import (
    CheckpointManager,
    checkpoint_name,
    collect_state,
    restore_state,
    resume_point,
)
from mdreg.engine.distributed import (
    DistEnv,
    StopVote,
    barrier,
    max_over_ranks,
    mean_over_ranks,
)
from mdreg.engine.handoff import apply_handoff
from mdreg.engine.monitor import Monitor
from mdreg.engine.optim import describe
from mdreg.engine.parts import StageParts
from mdreg.engine.sampling import sample_grid, sample_images
from mdreg.engine.stage import TrainSettings
from mdreg.engine.step import StepBatchSampler, StepResult, train_step, wrap
from mdreg.errors import UserError


class TrainingDiverged(UserError):
    """The loss or gradient became NaN/inf; the last good checkpoint is kept."""


class Trainer:
    """Trains the stage ``parts`` into the folder ``stage_dir`` as the process ``env``."""

    def __init__(self, parts: StageParts, stage_dir: str | Path, env: DistEnv, settings: TrainSettings):
        self.parts, self.dir, self.env, self.settings = parts, Path(stage_dir), env, settings
        self.ckpt = CheckpointManager(self.dir / "checkpoints", keep_last=settings.keep_last,
                                      milestone_every=settings.milestone_every)
        self.step = 0                       # optimizer steps done
        self.skipped = {"total": 0, "in_row": 0}  # on_nonfinite=skip_step
        self.stop_requested = False
        self.last_good: Path | None = None  # the newest checkpoint written or restored
        self.resumed_at: int | None = None  # the step of the checkpoint this launch resumed from
        self.monitor: Monitor | None = None
        self._restored: list[dict] | None = None  # events of restore(), recorded once the logs are open
        self._wrapped: tuple | None = None  # (net, ddp module or None), made on first use
        self._saved_step = -1
        self._grids_note = False

    def say(self, text: str) -> None:
        if self.env.is_main:
            print(f"[{self.parts.name}] {text}", flush=True)

    def request_stop(self) -> None:
        """Ask the trainer to checkpoint and stop at the next step boundary (safe to call
        from a signal handler or another thread; any one rank asking stops all)."""
        self.stop_requested = True

    # -- start ---------------------------------------------------------------------------
    def restore(self) -> list[dict]:
        """Resume from the newest checkpoint, or apply the stage's hand-off (once; :meth:`fit`
        calls it); returns the events to record once the logs are open."""
        if self._restored is None:
            self._restored = self._restore()
        return self._restored

    def _restore(self) -> list[dict]:
        latest, state, skipped = resume_point(self.ckpt, self.env.is_main)
        events = []
        for entry in skipped:
            kept = f"kept as {Path(entry['kept_as']).name}" if entry["kept_as"] else "not renamed"
            self.say(f"skipped unreadable checkpoint {entry['path']} ({entry['reason']}); {kept}")
            events.append({"event": "skipped_checkpoint", **entry})
        if latest is not None:
            self.step, notes = restore_state(self.parts, state, self.env)
            self.skipped = dict(state.get("nonfinite", self.skipped))
            for note in notes:
                self.say(f"note: {note}")
            self.last_good, self._saved_step, self.resumed_at = latest, self.step, self.step
            self.say(f"resumed from {latest} (step {self.step}/{self.parts.stage.steps})")
            events.append({"event": "resume", "step": self.step, "checkpoint": str(latest)})
            extension = self._extension(state)
            if extension:
                self.say(extension["note"])
                events.append(extension)
            return events
        if self.parts.stage.init_from is not None:
            source, notes, origin = apply_handoff(self.parts, self.dir.parent)
            self.say(f"initialised from {source}")
            for note in notes:
                self.say(f"  hand-off: {note}")
            return [{"event": "init_from", "source": source, "adapted": notes, **origin}]
        return []

    def _extension(self, state: dict) -> dict | None:
        """The ``extend`` event when the stage resumes to more steps than its checkpoint was
        written for (a raised ``steps`` or ``train.max_steps``), saying what the extension changes."""
        stage = self.parts.stage
        before = int(state.get("total_steps", stage.steps))
        if before >= stage.steps or self.step < before:
            return None
        span_before = int(state.get("schedule_steps", before))
        note = f"extending stage {stage.name!r} from {before} to {stage.steps} steps, from its checkpoint of step " \
               f"{self.step}: "
        if span_before == stage.schedule_steps:
            note += (f"the lr and mask-ratio schedules span its declared {stage.schedule_steps} steps as before, so the "
                     f"result equals an uninterrupted {stage.steps}-step run")
        else:
            changed = schedule_change(stage, span_before, self.step)
            note += (f"its schedules do not depend on the total ({span_before} -> {stage.schedule_steps} steps), so the "
                     f"result equals an uninterrupted {stage.steps}-step run" if not changed else
                     f"{changed}; steps {self.step}.. follow the {stage.schedule_steps}-step schedule, so the result "
                     f"differs from a fresh {stage.steps}-step run")
        return {"event": "extend", "step": self.step, "from_total": before, "to_total": stage.steps,
                "schedule_steps": [span_before, stage.schedule_steps], "note": note}

    @property
    def net(self):
        """What the objective calls: the model, DDP-wrapped across ranks, compiled if asked."""
        if self._wrapped is None:
            s = self.settings
            self._wrapped = wrap(self.parts.model, self.env, s.compile, s.find_unused_parameters, s.compile_mode)
        return self._wrapped[0]

    def loader(self):
        sampler = StepBatchSampler(len(self.parts.dataset), self.parts.stage.batch_size, self.parts.stage.seed, self.step,
                                   self.parts.stage.steps, self.env.rank, self.env.world_size)
        return torch.utils.data.DataLoader(self.parts.dataset, batch_sampler=sampler,
                                           num_workers=self.settings.num_workers,
                                           pin_memory=self.parts.device.type == "cuda", persistent_workers=False)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        """One optimizer step on this rank's batch; advances :attr:`step`."""
        net = self.net
        result = train_step(self.parts, net, self.step, x, y, self.env.rank, self._wrapped[1])
        self.step += 1
        return result

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until the stage's last step (or a stop request); returns the final metrics."""
        events = self.restore()
        parts, s = self.parts, self.settings
        if self.step >= parts.stage.steps:
            self.say(f"already complete ({self.step}/{parts.stage.steps} steps)")
            return {"step": self.step, "complete": True}
        self.monitor = Monitor(self.dir, parts.name, parts.stage.steps, enabled=self.env.is_main,
                               resume_step=self.resumed_at)
        for event in events:
            self.monitor.event(event)
        self.monitor.event({"event": "start", "step": self.step, "total_steps": parts.stage.steps,
                            "world_size": self.env.world_size, "micro_batch": parts.micro_batch,
                            "optimizer": describe(parts.optimizer), "precision": parts.precision.mode})
        self.monitor.start(self.step)
        parts.model.train()
        stop_vote = StopVote()
        sample_every = parts.stage.sample.get("every")
        eval_every = getattr(parts.evaluate, "every", None)
        loss_sum, bad_step = torch.zeros((), device=parts.device), torch.full((), -1, device=parts.device)
        n_logged, t_last, last = 0, time.perf_counter(), {}
        skips_inf = torch.tensor(parts.precision.skips_inf_steps, device=parts.device)
        for x, y in self.loader():
            out = self.train_step(x, y)
            if out.skipped:
                self._count_skip()
            else:
                self.skipped["in_row"] = 0
                finite = torch.isfinite(out.loss) & (torch.isfinite(out.grad_norm) | skips_inf)
                bad_step = torch.where(~finite & (bad_step < 0), torch.full_like(bad_step, self.step), bad_step)
                loss_sum += out.loss
                n_logged += 1
            done = self.step >= parts.stage.steps
            stop = not done and stop_vote.agree(self.stop_requested)
            if self.step % s.log_every == 0 or done or stop:
                self._check_finite(bad_step)
                now = time.perf_counter()
                mean_loss = float(mean_over_ranks(loss_sum))  # a collective: every rank calls it
                last = {"loss": mean_loss / n_logged if n_logged else float("nan"), "lr": out.lr,
                        "grad_norm": float(out.grad_norm),
                        "images_per_s": n_logged * parts.stage.batch_size / max(now - t_last, 1e-9),
                        "mask_ratio": parts.stage.mask_ratio(self.step - 1)}
                if parts.stage.on_nonfinite == "skip_step":
                    last["skipped_steps"] = self.skipped["total"]
                self.monitor.log(self.step, last)
                loss_sum.zero_()
                n_logged, t_last = 0, now
            if done or stop or (s.ckpt_every and self.step % s.ckpt_every == 0):
                self._check_finite(bad_step)
                self.save()
            if sample_every and self.step % int(sample_every) == 0 and not done:
                self._check_finite(bad_step)
                self.save_samples()
            if eval_every and self.step % int(eval_every) == 0 and not done:
                self._check_finite(bad_step)
                self.evaluate()
            if stop:
                return self._stopped(last)
        self.save_samples()
        last.update(self.evaluate())
        self.monitor.event({"event": "end", "step": self.step})
        self.monitor.close()
        return {"step": self.step, "complete": True, **last}

    def _count_skip(self) -> None:
        self.skipped["total"] += 1
        self.skipped["in_row"] += 1
        self.monitor.event({"event": "skipped_step", "step": self.step, "in_row": self.skipped["in_row"]})
        if self.skipped["in_row"] >= self.parts.stage.max_skips_in_row:
            self.monitor.event({"event": "diverged", "step": self.step})
            self.monitor.close()
            raise TrainingDiverged(
                f"stage {self.parts.name!r}: {self.skipped['in_row']} optimizer steps in a row (up to step "
                f"{self.step}) had a NaN/inf loss or gradient and were skipped "
                f"(stages.{self.parts.name}.max_skips_in_row={self.parts.stage.max_skips_in_row}); training stopped and "
                f"{self._last_good_text()}. Try a lower lr, grad_clip, or precision=bf16 instead of fp16")

    def _stopped(self, last: dict) -> dict:
        barrier()  # the checkpoint is on disk before any rank acts on the stop
        where = f"checkpoint saved ({self.last_good})" if self.env.is_main else "rank 0 saved the checkpoint"
        print(f"[{self.parts.name}] rank {self.env.rank}: stopped at step {self.step} on request; {where}",
              flush=True)
        self.monitor.event({"event": "stopped", "step": self.step, "checkpoint": str(self.last_good)})
        self.monitor.close()
        return {"step": self.step, "complete": False, **last}

    def _last_good_text(self) -> str:
        return f"the last good checkpoint is {self.last_good}" if self.last_good else "no checkpoint was written"

    def _check_finite(self, bad_step: torch.Tensor) -> None:
        bad = int(max_over_ranks(bad_step))
        if bad >= 0:
            self.monitor.event({"event": "diverged", "step": bad})
            self.monitor.close()
            raise TrainingDiverged(
                f"stage {self.parts.name!r}: the loss or gradient became NaN/inf at step {bad}; training stopped and "
                f"{self._last_good_text()}. Try a lower lr, grad_clip, precision=bf16 instead of fp16, or "
                f"stages.{self.parts.name}.on_nonfinite=skip_step")

    # -- outputs -------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write the checkpoint of the current step (rank 0; every rank must call it). If rank 0
        cannot (e.g. :class:`~mdreg.io.OutOfSpace`), every rank raises."""
        if self._saved_step == self.step:
            return self.last_good
        state = collect_state(self.parts, self.step)
        state["nonfinite"] = dict(self.skipped)
        path = self.ckpt.folder / checkpoint_name(self.step)
        self._on_rank0(lambda: self.ckpt.save(state, self.step), f"the checkpoint of step {self.step}")
        self.last_good, self._saved_step = path, self.step
        return self.last_good

    def _on_rank0(self, write: Callable[[], object], what: str):
        """Run ``write`` on rank 0 and let every rank know whether it failed, so that all
        stop together instead of waiting on rank 0 in the next collective."""
        error = result = None
        if self.env.is_main:
            try:
                result = write()
            except UserError as exc:
                error = exc
        failed = max_over_ranks(torch.tensor(int(error is not None), device=self.parts.device))
        if error is not None:
            raise error
        if int(failed):
            raise UserError(f"stage {self.parts.name!r}: rank 0 could not write {what} (its error is in rank 0's "
                            f"output); this rank stops too")
        return result

    def _can_sample(self) -> bool:
        """Rank 0 with a sampler and a transform that decodes to pixels (one note otherwise)."""
        if not self.env.is_main or self.parts.stage.sample.get("sampler") is None:
            return False
        if getattr(self.parts.transform, "can_decode", True):
            return True
        if not self._grids_note:
            self._grids_note = True
            note = f"sample grids skipped: {self.parts.transform!r} cannot decode to pixels (no VAE configured)"
            self.say(f"note: {note}")
            self.monitor.event({"event": "note", "step": self.step, "note": note})
        return False

    def save_samples(self) -> Path | None:
        """A PNG grid of EMA samples with the stage's sampler, written by rank 0 (every rank
        calls it, and raises if rank 0 could not write it)."""
        return self._on_rank0(self._write_samples, f"the sample grid of step {self.step}")

    def _write_samples(self) -> Path | None:
        if not self._can_sample():
            return None
        path = self.dir / "samples" / f"step_{self.step:08d}.png"
        self.monitor.image("samples", sample_grid(self.parts, path), self.step)
        return path

    def evaluate(self) -> dict:
        """The stage's ``evaluate`` metric on fresh EMA samples (rank 0; every ``evaluate.every``
        steps and at the end), logged to metrics.jsonl and tensorboard under ``eval/``."""
        if self.parts.evaluate is None or not self._can_sample():
            return {}
        scores = self.parts.evaluate(sample_images(self.parts, int(self.parts.evaluate.num), seed=self.parts.stage.seed + 11))
        self.monitor.scalars(self.step, {f"eval/{k}": v for k, v in scores.items()})
        self.monitor.event({"event": "evaluation", "step": self.step, "metric": repr(self.parts.evaluate),
                            "scores": scores})
        self.say("evaluation: " + "  ".join(f"{k} {v:.4g}" for k, v in scores.items()))
        return {f"eval/{k}": v for k, v in scores.items()}


def schedule_change(stage, span_before: int, upto: int) -> str:
    """How the stage's lr and mask-ratio schedules over ``stage.schedule_steps`` differ from
    those over ``span_before`` at the steps before ``upto`` and at ``upto`` ('' if they do not)."""
    changes = []
    if stage.lr_schedule is not None:
        before, now = stage.lr_schedule(upto, span_before), stage.lr_schedule(upto, stage.schedule_steps)
        if any(stage.lr_schedule(s, span_before) != stage.lr_schedule(s, stage.schedule_steps) for s in range(upto)) \
                or before != now:
            changes.append(f"its lr schedule depends on the total (lr factor at step {upto}: {before:.4g} in the "
                           f"{span_before}-step schedule, {now:.4g} now)")
    if stage.mask_schedule is not None and stage.masker is not None:
        ratio = stage.masker.ratio
        if stage.mask_schedule(upto, span_before, ratio) != stage.mask_schedule(upto, stage.schedule_steps, ratio):
            changes.append("its mask-ratio schedule depends on the total")
    return " and ".join(changes)
