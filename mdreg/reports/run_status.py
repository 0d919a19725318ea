"""``python tools/launch.py --status RUN_DIR | RECIPE.py | FOLDER``: the state of runs as they lie
on disk, whoever trained them (a local launch, torchrun, or a Slurm job whose records are gone).

One row per run and stage: its state, steps done of its total, the last logged loss and the
stage metric's headline score (with the step it was measured at), the newest checkpoint and
when the stage last wrote. States: ``done``; ``running`` (a live process holds the run's lock:
its pid and host are shown); ``interrupted`` (its last launch ended without a word: killed, or
a machine lost; relaunching the same command resumes); ``stopped`` (on request, e.g. a
preemption); ``diverged`` (a NaN/inf loss stopped it); ``not started``. A recipe file lists every
run made from recipes with its name (``<output_root>/<recipe>/*``), e.g. each element of a sweep.
Everything comes from :func:`mdreg.runs.records.read_stage` and the lock's record
(:func:`mdreg.runs.lock.current_holder`); nothing is built or imported.
"""
from __future__ import annotations

import time
from pathlib import Path

from tabulate import tabulate

from mdreg.config.serialize import load_config
from mdreg.engine.stage import capped_steps
from mdreg.errors import UserError
from mdreg.runs.jobs import RECORD
from mdreg.runs.lock import current_holder
from mdreg.runs.records import StageRecord, read_stage
from mdreg.runs.rundir import is_run_dir

HEADERS = ["run", "stage", "state", "steps", "loss", "metric", "checkpoint", "updated"]


def stage_state(rec: StageRecord, held_by: str | None) -> str:
    """The state a user reads: ``running`` only when a live process holds the run."""
    if rec.state == "running":
        return f"running ({held_by})" if held_by else "interrupted"
    return rec.state


def _metric(rec: StageRecord) -> str:
    if not rec.evals:
        return "-"
    last = rec.evals[-1]
    name, value = next(iter(last["scores"].items()))
    return f"{name} {value:.4g} @ {last['step']}"


def _age(when: float | None) -> str:
    if when is None:
        return "-"
    seconds = max(0, int(time.time() - when))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def run_rows(run_dir: Path) -> tuple[list[list[str]], list[str]]:
    """The table rows of one run directory and the state of each of its stages."""
    cfg = load_config(run_dir / "config.yaml")
    holder, alive, _ = current_holder(run_dir)
    held_by = f"pid {holder.pid} on {holder.host}" if holder is not None and alive else None
    rows, states = [], []
    for name in cfg.stages.keys():
        rec = read_stage(run_dir / name, capped_steps(cfg, name))
        state = stage_state(rec, held_by)
        loss = f"{rec.losses[-1][1]:.4g}" if rec.losses else "-"
        rows.append([run_dir.name, name, state, f"{rec.done}/{rec.total}", loss, _metric(rec),
                     rec.checkpoint.name if rec.checkpoint else "-", _age(rec.updated)])
        states.append(state)
    return rows, states


def _holds_a_run(path: Path) -> bool:
    """A run directory, or what is left of one whose Slurm jobs are recorded (its jobs can be
    followed even with config.yaml gone)."""
    return is_run_dir(path) or (path / RECORD).is_file()


def runs_of(target: str | Path) -> list[Path]:
    """The run directories ``target`` names: a run directory, a folder of runs, or a recipe file
    (the runs under ``<train.output_root>/<recipe name>/``)."""
    path = Path(target)
    if path.suffix == ".py":
        from mdreg.config.loader import load_recipe

        root = Path(str(load_recipe(path).get("train", {}).get("output_root") or "runs"))
        path = root / path.stem
        if not path.is_dir():
            raise UserError(f"{target}: no runs yet ({path} does not exist); launch it with python tools/launch.py "
                            f"{target}")
    if _holds_a_run(path):
        return [path]
    runs = sorted(p for p in path.iterdir() if _holds_a_run(p)) if path.is_dir() else []
    if not runs:
        raise UserError(f"{target}: neither a run directory (with config.yaml) nor a folder of runs nor a recipe file")
    return runs


def status_table(run_dirs: list[Path]) -> tuple[str, list[str]]:
    """The table of ``run_dirs`` and every stage's state."""
    rows, states = [], []
    for run in run_dirs:
        found, found_states = run_rows(run)
        rows += found
        states += found_states
    return tabulate(rows, headers=HEADERS, disable_numparse=True), states
