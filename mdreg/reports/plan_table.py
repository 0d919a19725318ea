"""``python tools/launch.py RECIPE --dry-run``: the resolved config and the plan of the runs
(run, stage, steps, global batch, where each stage starts from and writes to)."""
from __future__ import annotations

from omegaconf import OmegaConf
from tabulate import tabulate

from mdreg.runs.plan import RunPlan


def plan_table(plans: list[RunPlan]) -> str:
    rows = []
    for plan in plans:
        for stage in plan.stages:
            start = stage.init_from.describe() if stage.init_from else "fresh init"  # an earlier stage or a file
            rows.append([plan.run_name, stage.name, stage.steps, stage.batch_size, start, str(plan.folder(stage.name))])
    return tabulate(rows, headers=["run", "stage", "steps", "global batch", "starts from", "output"])


def describe_plans(plans: list[RunPlan], show_config: bool = True) -> str:
    parts = []
    if show_config and len(plans) == 1:
        parts.append("# resolved config\n" + OmegaConf.to_yaml(plans[0].cfg, resolve=True))
    for plan in plans:
        for note in plan.notes:
            parts.append(f"note: {note}")
    parts.append(f"# plan: {len(plans)} run(s) of {plans[0].recipe}\n" + plan_table(plans))
    return "\n".join(parts)
