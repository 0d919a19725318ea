"""Running a plan's stages in this process: :func:`run_stages`, the one function both executors
call (the local executor here, and each task of a Slurm job, :mod:`mdreg.launch.slurm.stage_job`).

:func:`start_process` sets the process up once (rank and device from the environment, the
process group with its collective timeout, TF32 and attention backends). :func:`run_stages`
then holds the run's lock (rank 0; ``RUN_DIR/.lock``, :mod:`mdreg.runs.lock`), makes or
checks the run directory, and trains the stages in order: each one's heavy parts are built
around the planned stage (:func:`~mdreg.engine.parts.build_parts`) and its
:class:`~mdreg.engine.trainer.Trainer` fits them. A complete stage is skipped, an interrupted
one resumes from its last checkpoint, so re-running the same command continues where the last
one stopped. Under ``torchrun`` every rank runs this; rank 0 alone writes the run directory's
files and the others wait for it. A rank that dies makes the others stop with
:class:`~mdreg.engine.distributed.CollectiveFailure` (naming it when possible).

The local executor is the default: no cluster needed. At the end the launcher prints
:func:`outputs_summary`: where everything landed.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Protocol

from mdreg.engine.distributed import (
    DistEnv,
    barrier,
    collective_failures_explained,
    configure_process,
    setup,
)
from mdreg.engine.parts import build_parts
from mdreg.engine.trainer import Trainer
from mdreg.runs.lock import hold
from mdreg.runs.plan import RunPlan
from mdreg.runs.rundir import prepare, write_stage_config


class StopControl(Protocol):
    """What a Slurm job hands to :func:`run_stages` to stop at a step boundary on preemption
    (:class:`~mdreg.launch.slurm.preemption.StopAtStepBoundary`)."""

    requested: bool

    def attach(self, trainer: Trainer) -> None: ...

    def detach(self) -> None: ...


def start_process(plan: RunPlan, source: str | None = None) -> DistEnv:
    """This process's place in the run (``source``: ``slurm``, ``torchrun``, ``single`` or
    detected), with the run's process-wide switches applied."""
    s = plan.settings
    env = setup(s.device, source=source, timeout_s=s.collective_timeout_s)
    configure_process(plan.cfg.train, env.device)
    return env


def run_stages(plan: RunPlan, env: DistEnv, stages: list[str] | None = None, job_id: str | None = None,
               stop: StopControl | None = None) -> dict[str, dict]:
    """Train ``stages`` (default: all) of ``plan`` in this process, in order; returns each
    stage's final metrics (``complete: False`` for one stopped on request, after which no
    further stage starts). ``job_id``: the Slurm job this is (its lock may be taken over by
    its own requeued run)."""
    results: dict[str, dict] = {}
    made_here = not plan.run_dir.exists()
    try:
        _run(plan, env, stages, job_id, stop, results)
    except BaseException:
        if made_here and env.is_main and remove_unstarted(plan.run_dir):
            print(f"note: removed {plan.run_dir}: this launch made it and it holds nothing trained yet", file=sys.stderr,
                  flush=True)
        raise
    return results


def _run(plan: RunPlan, env: DistEnv, stages: list[str] | None, job_id: str | None, stop: StopControl | None,
         results: dict[str, dict]) -> None:
    with hold(plan.run_dir, env, job_id=job_id), collective_failures_explained(env):
        if env.is_main:
            prepare(plan)
        barrier()
        for stage in plan.stages:
            if stages and stage.name not in stages:
                continue
            if stop is not None and stop.requested:
                break
            if env.is_main:
                write_stage_config(plan, stage.name)
            barrier()
            trainer = Trainer(build_parts(plan.cfg, stage, env), plan.folder(stage.name), env, plan.settings)
            if stop is not None:
                stop.attach(trainer)
            results[stage.name] = trainer.fit()
            if stop is not None:
                stop.detach()
            if not results[stage.name]["complete"]:
                break


SCAFFOLD = {"config.yaml", "meta.yaml", ".lock"}  # what a launch writes before it trains anything


def remove_unstarted(run_dir: Path) -> bool:
    """Remove ``run_dir`` if it holds only what a launch writes before training (its config,
    meta.yaml, the lock, stage folders with their config.yaml); True when removed."""
    for entry in run_dir.iterdir() if run_dir.is_dir() else ():
        inside = {p.name for p in entry.iterdir()} if entry.is_dir() else set()
        if entry.name not in SCAFFOLD and not (entry.is_dir() and inside <= {"config.yaml"}):
            return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


class LocalExecutor:
    """Runs plans one after the other in the current process (one rank of several under torchrun)."""

    name = "local"

    def __init__(self, env: DistEnv | None = None):
        self.env = env

    def start(self, plan: RunPlan) -> DistEnv:
        """This process's place in the run (set up by the first plan)."""
        self.env = self.env or start_process(plan)
        return self.env

    def run(self, plan: RunPlan, stages: list[str] | None = None) -> dict[str, dict]:
        return run_stages(plan, self.start(plan), stages)


def outputs_summary(plan: RunPlan) -> str:
    """Where a finished local run's outputs are (printed after training)."""
    lines = [f"run directory: {plan.run_dir}", "  config.yaml, meta.yaml"]
    for stage in plan.stages:
        lines.append(f"  {stage.name}/: checkpoints/ (last -> {read_last(plan.folder(stage.name))}), samples/*.png, "
                     f"metrics.jsonl, tensorboard events")
    lines.append(f"tensorboard --logdir {plan.run_dir}")
    return "\n".join(lines)


def read_last(folder) -> str:
    pointer = folder / "checkpoints" / "last"
    return pointer.read_text().strip() if pointer.is_file() else "none"
