"""The local executor: run a plan's stages in this process, in order.

This is the default (no cluster needed). A stage that is already complete is skipped,
an interrupted one resumes from its last checkpoint, so re-running the same command
continues where the last one stopped. Under ``torchrun`` every rank runs this; rank 0
alone writes the run directory's files and the others wait for it. At the end the launcher
prints :func:`outputs_summary`: where everything landed.

While a run trains, rank 0 holds its lock (``RUN_DIR/.lock``, :mod:`mdreg.runs.lock`):
a second launch of the same run, or one while the run's Slurm jobs are queued or running, is
refused before it writes anything. A rank that dies makes the others stop with
:class:`~mdreg.engine.distributed.CollectiveFailure` (naming it when possible) instead of a
bare backend error.
"""
from __future__ import annotations

from mdreg.engine.distributed import DistEnv, barrier, collective_failures_explained, configure_process, setup
from mdreg.engine.trainer import Trainer
from mdreg.runs.plan import RunPlan
from mdreg.runs.rundir import prepare, write_stage_config
from mdreg.runs.lock import hold


class LocalExecutor:
    """Runs plans one after the other in the current process (one rank of several under torchrun)."""

    name = "local"

    def __init__(self, env: DistEnv | None = None):
        self.env = env

    def run(self, plan: RunPlan, stages: list[str] | None = None) -> dict[str, dict]:
        env = self.env = self.env or setup(str(plan.cfg.train.get("device", "auto")),
                                           timeout_s=plan.cfg.train.get("collective_timeout_s"))
        configure_process(plan.cfg.train, env.device)
        with hold(plan.run_dir, env), collective_failures_explained(env):
            return self._stages(plan, stages, env)

    def _stages(self, plan: RunPlan, stages: list[str] | None, env: DistEnv) -> dict[str, dict]:
        if env.is_main:
            prepare(plan)
        barrier()
        results = {}
        for stage in plan.stages:
            if stages and stage.name not in stages:
                continue
            if env.is_main:
                write_stage_config(plan, stage.name)
            barrier()
            results[stage.name] = Trainer.for_stage(plan.cfg, stage.name, plan.run_dir, env).fit()
        return results

    def submit(self, plans: list[RunPlan], stages: list[str] | None = None) -> list[dict[str, dict]]:
        return [self.run(plan, stages) for plan in plans]


def outputs_summary(plan: RunPlan) -> str:
    """Where a finished local run's outputs are (printed after training)."""
    lines = [f"run directory: {plan.run_dir}", "  config.yaml, meta.yaml"]
    for stage in plan.stages:
        lines.append(f"  {stage.name}/: checkpoints/ (last -> {read_last(stage.folder)}), samples/*.png, "
                     f"metrics.jsonl, tensorboard events")
    lines.append(f"tensorboard --logdir {plan.run_dir}")
    return "\n".join(lines)


def read_last(folder) -> str:
    pointer = folder / "checkpoints" / "last"
    return pointer.read_text().strip() if pointer.is_file() else "none"
