"""The local executor: run a plan's stages in this process, in order.

This is the default (no cluster needed). A stage that is already complete is skipped,
an interrupted one resumes from its last checkpoint, so re-running the same command
continues where the last one stopped.
"""
from __future__ import annotations

from mdreg.engine.trainer import Trainer
from mdreg.launch.plan import RunPlan
from mdreg.launch.rundir import prepare, write_stage_config


class LocalExecutor:
    """Runs plans one after the other in the current process."""

    name = "local"

    def run(self, plan: RunPlan, stages: list[str] | None = None) -> dict[str, dict]:
        prepare(plan)
        results = {}
        for stage in plan.stages:
            if stages and stage.name not in stages:
                continue
            write_stage_config(plan, stage.name)
            results[stage.name] = Trainer(plan.cfg, stage.name, plan.run_dir).fit()
        return results

    def submit(self, plans: list[RunPlan], stages: list[str] | None = None) -> list[dict[str, dict]]:
        return [self.run(plan, stages) for plan in plans]
