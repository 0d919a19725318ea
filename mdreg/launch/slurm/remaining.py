"""Which stages of a run still need a job: relaunching a sweep resubmits only what is unfinished.

A stage is *complete* when its newest checkpoint (the one ``last`` names, else the newest step
file) is of its final step and is whole: a zip archive whose central directory reads (what
``torch.save`` writes; a truncated or emptied file has none). Only the archive's directory is
read, not the tensors, so this costs the same for a 10 GB checkpoint and for 256 runs. A
complete stage gets no job; a stage whose parent stage is complete starts without a
dependency. A run with every stage asked for complete gets none at all (its run directory
and its ``jobs.json`` are left as they are); :func:`describe_complete` says so.

Damage inside an archive's members is not seen here: the job's resume finds it, sets the
file aside and falls back (:func:`mdreg.engine.checkpoint.resume_point`).
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from mdreg.runs.plan import RunPlan

_STEP = re.compile(r"^step_(\d+)\.pt$")


def whole(path: Path) -> bool:
    """``path`` opens as a zip archive (its central directory is intact)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def stage_complete(folder: Path, steps: int) -> bool:
    from mdreg.engine.checkpoint import CheckpointManager

    latest = CheckpointManager(folder / "checkpoints").latest()
    match = _STEP.match(latest.name) if latest is not None else None
    return bool(match) and int(match.group(1)) >= steps and whole(latest)


def complete_stages(plans: list[RunPlan]) -> dict[Path, set[str]]:
    """For each plan's run directory, the names of its complete stages."""
    return {plan.run_dir: {s.name for s in plan.stages if stage_complete(plan.folder(s.name), s.steps)} for plan in plans}


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
