"""Preemption and time limits inside a Slurm job: checkpoint at a step boundary, then let
submitit requeue the job.

How this fits submitit's ``helpers.Checkpointable``: before calling the job, submitit
installs a USR2 handler (``SignalHandler.checkpoint_and_try_requeue``). Left alone, it
runs the moment the signal lands (in the middle of a forward pass, an optimizer step or a
checkpoint write), calls the job's ``checkpoint()``, runs ``scontrol requeue`` and exits:
saving the trainer from there could capture half an optimizer step.

So while training, :class:`StopAtStepBoundary` replaces that handler with one that only
records the signal and calls ``Trainer.request_stop()`` (a flag). The trainer finishes its
step; all ranks agree to stop after that same step; rank 0 writes the full state (model,
EMA, optimizer, scaler, RNG, step) atomically; ``fit()`` returns. Then :meth:`requeue`
calls submitit's own handler, which does what it always does: ``StageJob.checkpoint()``
(the same job again: it holds no state, the trainer resumes from its checkpoint),
``scontrol requeue``, exit. The requeued run sees ``SLURM_RESTART_COUNT`` >= 1 and its
final weights equal an uninterrupted run's. A signal that lands after the last step (during
the final checkpoint, grid or metric, or on the way out) finds the work done:
:meth:`StopAtStepBoundary.finished` keeps submitit's handler out, so the job ends
``COMPLETED`` instead of being requeued to find nothing left to train.

Facts this relies on (submitit 1.5):

* only global rank 0 checkpoints and requeues; submitit's handler returns on the other
  ranks, which then wait (at most :data:`RANK_WAIT_S`) for the requeue to end them;
* submitit calls a signal a *timeout* when the job ran longer than
  ``min(0.8 * limit, limit - 10 min)``; with ``timeout_min <= 10`` every USR2, even a
  preemption, counts as a timeout and uses one of ``launch.slurm.max_num_timeout``
  requeues. When they are used up the job fails after saving, with an error that says so
  (submitit's "timed-out too many times"): relaunching the same command resumes;
* Slurm sends USR2 ``launch.slurm.signal_delay_s`` before the time limit: one step plus one
  checkpoint write must fit in it;
* a plain ``scontrol requeue`` sends no signal, and Slurm's own preemption sends USR2 only
  when the cluster sets ``PreemptParameters=send_user_signal`` (otherwise SIGTERM, which
  submitit ignores, then SIGKILL after ``GraceTime``): then the run restarts from its last
  periodic checkpoint (``train.ckpt_every``).
"""
from __future__ import annotations

import os
import signal
import time
from typing import NoReturn

import submitit
from submitit.core.utils import UncompletedJobError

RANK_WAIT_S = 120


def preemption_signal() -> signal.Signals:
    """The signal submitit uses (USR2, or ``$SUBMITIT_PREEMPT_SIGNAL``)."""
    return getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)


class StopAtStepBoundary:
    """Context manager: turn the preemption signal into a stop request to the trainer."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.trainer = None
        self.done = False
        self._signal = preemption_signal()
        self._submitit_handler = None

    def __enter__(self) -> "StopAtStepBoundary":
        self._submitit_handler = signal.getsignal(self._signal)
        signal.signal(self._signal, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        if not self.done:  # finished: a late signal must not reach submitit's requeue
            signal.signal(self._signal, self._submitit_handler)

    def _on_signal(self, signum: int, frame) -> None:
        # signal handler: set flags only (os.write is safe here, print is not)
        if self.done:
            os.write(2, self._too_late(signum).encode())
            return
        self.signum = signum
        os.write(2, f"mdreg: caught {signal.Signals(signum).name}: stopping at the next step boundary\n".encode())
        if self.trainer is not None:
            self.trainer.request_stop()

    @staticmethod
    def _too_late(signum: int) -> str:
        return f"mdreg: caught {signal.Signals(signum).name} after the last step: the stages are done, nothing to requeue\n"

    def finished(self) -> None:
        """Every stage reached its last step: a signal that came during the final checkpoint,
        grid or metric, or comes from now on, is reported and requeues nothing."""
        self.done = True
        if self.signum is not None:
            os.write(2, self._too_late(self.signum).encode())

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def attach(self, trainer) -> None:
        """Route stop requests to ``trainer`` (one that arrived before it existed, too)."""
        self.trainer = trainer
        if self.requested:
            trainer.request_stop()

    def detach(self) -> None:
        self.trainer = None

    def requeue(self) -> NoReturn:
        """After the checkpoint: hand over to submitit's handler (checkpoint(), requeue, exit)."""
        handler = self._submitit_handler
        # a rank stopped by the other ranks' vote saw no signal itself: hand over the one submitit listens to
        signum = self.signum or self._signal
        if not callable(handler):
            raise RuntimeError(f"stopped on {signal.Signals(signum).name}, but submitit's handler is not "
                               f"installed: StageJob must run inside a submitit job")
        print("mdreg: checkpoint saved; handing over to submitit to requeue the job", flush=True)
        try:
            handler(signum, None)  # rank 0: exits (requeued) or raises UncompletedJobError (no requeue left)
        except UncompletedJobError as refused:
            raise RuntimeError(
                f"the checkpoint is saved, but submitit did not requeue the job ({refused}). A job with "
                f"--time of 10 minutes or less counts every {signal.Signals(signum).name} (time limit or "
                f"preemption) as a time-out, and launch.slurm.max_num_timeout of them are allowed. Launch the "
                f"same command again to continue from the checkpoint, or give a longer --time or a larger "
                f"launch.slurm.max_num_timeout") from None
        rank = submitit.JobEnvironment().global_rank
        print(f"mdreg: rank {rank} waits for rank 0's requeue to end this task", flush=True)
        time.sleep(RANK_WAIT_S)
        raise RuntimeError(f"rank {rank} stopped for a requeue that did not come within {RANK_WAIT_S} s; "
                           f"see rank 0's log")
