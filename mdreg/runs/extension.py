"""Extending a run: a finished or capped run relaunched with more steps continues from its last
checkpoint instead of starting over.

Two ways to ask for more steps, both with the same run name: raise ``train.max_steps`` (a cap,
not part of the run's identity), or raise a stage's ``steps`` (edit the recipe, or override it
with ``train.run_name`` fixed). The trainer resumes from the stage's last checkpoint and says in
its output and in metrics.jsonl (an ``extend`` event) whether the result equals an uninterrupted
run of the new length: it does when the lr and mask-ratio schedules do not depend on the total
(:func:`mdreg.engine.trainer.schedule_change`).

What the run directory accepts (:func:`accept_lengths`): a stage may grow, and may shrink only
to no fewer steps than it has trained. A later stage that started from an earlier stage's
weights at a step before that stage's new end would be left behind: it is moved aside, whole,
to ``RUN/<stage>.before-extension[-N]`` and trained again from the extended weights
(:func:`set_aside_stale_stages`), so the extended run equals an uninterrupted one and nothing is
deleted.
"""
from __future__ import annotations

import re

from mdreg.engine.checkpoint import CheckpointManager
from mdreg.errors import UserError
from mdreg.io import read_jsonl
from mdreg.runs.plan import RunPlan

_STEPS = re.compile(r"^stages\.([^.]+)\.steps$")


def is_length(key: str) -> bool:
    """``stages.<name>.steps``: a key whose change extends (or shortens) a stage."""
    return bool(_STEPS.match(key))


def trained_steps(plan: RunPlan, stage: str) -> int:
    """The newest checkpoint's step of ``stage`` (0 when it has none)."""
    steps = CheckpointManager(plan.folder(stage) / "checkpoints").steps()
    return steps[-1] if steps else 0


def accept_lengths(plan: RunPlan, differences: list[tuple]) -> list[str]:
    """Check the changed ``stages.<name>.steps`` of ``differences`` against what each stage has
    trained; returns one line per accepted change, raises a UserError for a shortening below it."""
    lines = []
    for key, old, new in differences:
        name = _STEPS.match(key).group(1)
        done = trained_steps(plan, name)
        if new < done:
            raise UserError(f"{plan.run_dir}: stage {name!r} has trained {done} steps; {key}={new} cannot shorten it. "
                            f"Nothing was changed. Start a new run with train.run_name=NEW_NAME, or restore "
                            f"{key}={old}")
        lines.append(f"stage {name!r}: {old} -> {new} steps" + (f" (it has trained {done})" if done else ""))
    return lines


def _taken_at(plan: RunPlan, stage: str) -> int | None:
    """The step of its parent's weights ``stage`` started from (its ``init_from`` event), or None."""
    for event in read_jsonl(plan.folder(stage) / "metrics.jsonl"):
        if event.get("event") == "init_from" and isinstance(event.get("from_step"), int):
            return event["from_step"]
    return None


def set_aside_stale_stages(plan: RunPlan) -> list[str]:
    """Move aside every stage that started from its parent's weights at a step before the
    parent's (new) end; returns one line per moved stage."""
    lines = []
    for stage in plan.stages:
        if stage.parent is None:
            continue
        taken = _taken_at(plan, stage.name)
        end = plan.stage(stage.parent).steps
        if taken is None or taken >= end:
            continue
        folder, n = plan.folder(stage.name), 1
        target = folder.with_name(f"{stage.name}.before-extension")
        while target.exists():
            n += 1
            target = folder.with_name(f"{stage.name}.before-extension-{n}")
        folder.rename(target)
        lines.append(f"stage {stage.name!r} started from {stage.parent!r} at step {taken}, which now runs to {end}: "
                     f"moved aside to {target} and trained again from the extended weights")
    return lines
