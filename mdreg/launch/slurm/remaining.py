"""Which stages of a run still need a job: relaunching a sweep resubmits only what is unfinished.

A stage is *complete* when its newest checkpoint is of its final step and whole
(:func:`mdreg.runs.records.stage_complete`: only the archive's directory is read, so this costs
the same for a 10 GB checkpoint and for 256 runs). A complete stage gets no job; a stage whose
parent stage is complete starts without a dependency. A run with every stage asked for complete gets none at all (its run directory
and its ``jobs.json`` are left as they are); :func:`describe_complete` says so.
"""
from __future__ import annotations

from pathlib import Path

from mdreg.runs.plan import RunPlan
from mdreg.runs.records import stage_complete


def complete_stages(plans: list[RunPlan]) -> dict[Path, set[str]]:
    """For each plan's run directory, the names of its complete stages."""
    return {plan.run_dir: {s.name for s in plan.stages if stage_complete(plan.folder(s.name), s.steps)}
            for plan in plans}


def describe_complete(plans: list[RunPlan], done: dict[Path, set[str]], stages: list[str] | None,
                      listed: int = 6) -> list[str]:
    """Lines naming the runs left out because every stage asked for is complete."""
    skipped = [plan for plan in plans
               if all(s.name in done.get(plan.run_dir, ()) for s in plan.stages if not stages or s.name in stages)]
    if not skipped:
        return []
    lines = [f"# complete: a submission leaves out {len(skipped)} run(s) (every stage asked for has its final "
             f"checkpoint)"]
    lines += [f"  {plan.run_dir}" for plan in skipped[:listed]]
    if len(skipped) > listed:
        lines.append(f"  ... and {len(skipped) - listed} more")
    return lines
