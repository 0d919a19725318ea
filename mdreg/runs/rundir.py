"""Run directories: create them safely and refuse to mix two different runs in one.

``<output_root>/<recipe>/<run name>/`` holds ``config.yaml`` (the exact tree, reloadable),
``meta.yaml`` (recipe path and sha256 (:mod:`mdreg.runs.recipe_identity`), overrides, command
line, times, provenance) and one folder per stage.
Relaunching the same command finds the same ``config.yaml`` and resumes. If the saved
config differs from the new one in what is trained, nothing is touched and the error lists
the differing keys: a changed recipe must not silently continue (or overwrite) an earlier
run. Keys that say where and how the run executes (``launch.*``, ``paths.*``,
``evaluation.*``, ``train.device``, ``train.num_workers``: :func:`mdreg.runs.plan.changes_training`)
may change on resume, e.g. on another machine; the saved configs are updated and the
change is printed.

Damage is named as damage: a ``config.yaml`` that is not valid YAML or is cut short says so and
names a stage folder's copy (``RUN/STAGE/config.yaml``) to restore it from; a missing one is
replaced by that copy when the config is the same, and a different config is refused as
above; ``meta.yaml`` is never rewritten; a stage whose checkpoints are all gone although its
records reached a step is refused, not retrained from step 0 (docs/engine.md, "What survives what").
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mdreg.config.diff import diff_trees
from mdreg.config.serialize import dump_yaml, load_config
from mdreg.engine.stage import TrainSettings, plan_stage
from mdreg.errors import UserError
from mdreg.io import atomic_write_text
from mdreg.plugins import import_plugins, plugins_of
from mdreg.provenance import collect
from mdreg.runs.extension import accept_lengths, is_length, set_aside_stale_stages
from mdreg.runs.plan import RunPlan, changes_training
from mdreg.runs.recipe_identity import check_same_recipe, recipe_record


def check_writable(folder: Path) -> None:
    """Create ``folder`` (and parents) or fail with the config key to change."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output directory {folder} ({exc.strerror}); "
                        f"set train.output_root=SOME/WRITABLE/DIR") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"the output directory {folder} is not writable; set train.output_root=SOME/WRITABLE/DIR")


def prepare(plan: RunPlan) -> None:
    """Make the run directory and write (or verify) its config.yaml.

    An existing run is checked against its ``config.yaml``, or, when that file is gone, against
    the copy a stage folder holds (``RUN/STAGE/config.yaml``; config.yaml is then restored). A
    damaged config.yaml (not valid YAML, cut short) is named as such, never as "a different
    config". ``meta.yaml`` is written when the run is made and never rewritten. A stage whose
    records say it reached a step but whose checkpoints are all gone is refused
    (:func:`check_checkpoints_left`) rather than retrained from step 0 without a word."""
    text = dump_yaml(plan.cfg)  # refuses lambdas etc. before anything is written
    saved = plan.run_dir / "config.yaml"
    copies = [plan.folder(s.name) / "config.yaml" for s in plan.stages if (plan.folder(s.name) / "config.yaml").is_file()]
    if saved.is_file():
        source, previous = saved, read_saved_config(saved, copies)
    else:
        source, previous = _stage_copy(plan, copies)
    if previous is not None:
        check_same_recipe(plan.recipe, plan.run_dir, _meta_if_readable(plan.run_dir))
        differences = diff_trees(previous, plan.cfg)
        trained = [d for d in differences if changes_training(d[0]) and not is_length(d[0])]
        extended = accept_lengths(plan, [d for d in differences if is_length(d[0])])  # docs: mdreg.runs.extension
        if trained:
            where = "" if source == saved else f" (config.yaml is missing; compared with its copy {source})"
            raise UserError(f"{plan.run_dir} already holds a run with a different config ({_shown(trained)}){where}. "
                            f"Nothing was changed. Start a new run with train.run_name=NEW_NAME, or restore "
                            f"the recipe to resume this one")
        check_checkpoints_left(plan)
        for line in [*extended, *set_aside_stale_stages(plan)]:
            print(f"{plan.run_dir}: {line}", flush=True)
        if source != saved:
            atomic_write_text(saved, text)
            print(f"{plan.run_dir}: config.yaml was missing; restored from {source} (the same config)", flush=True)
        if differences:  # where/how it runs (another machine, other resources): same run, settings updated
            for path in [saved, *copies]:
                atomic_write_text(path, text)
            print(f"{plan.run_dir}: resuming with changed run settings ({_shown(differences)}); config.yaml updated",
                  flush=True)
        return
    check_writable(plan.run_dir)
    atomic_write_text(saved, text)
    if (plan.run_dir / "meta.yaml").exists():  # how the run was made: never rewritten
        return
    meta = {"recipe": str(plan.recipe), **recipe_record(plan.recipe), "overrides": plan.overrides, "sweep_values": plan.sweep_values,
            "command": " ".join(sys.argv), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "stages": [s.name for s in plan.stages],
            "provenance": collect()}  # git commit/dirty, versions, GPUs, host, Slurm job (mdreg/provenance.py)
    atomic_write_text(plan.run_dir / "meta.yaml", OmegaConf.to_yaml(OmegaConf.create(meta)))


def _yaml_problem(exc: Exception) -> str:
    """``could not find expected ':' at line 18, column 8`` from a YAML parser error."""
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def _restore_hint(saved: Path, copies: list[Path]) -> str:
    if copies:
        return (f"Each stage folder holds a copy of the run's config: restore it with `cp {copies[0]} {saved}` and "
                f"rerun the same command")
    return (f"No stage folder holds a copy ({saved.parent}/STAGE/config.yaml): restore it from a backup, or, if no "
            f"stage has started yet, delete it and rerun the same command")


def read_saved_config(saved: Path, copies: list[Path]):
    """The config tree in a run's ``config.yaml``; a file that is not valid YAML or is cut short
    (an interrupted copy or sync: no final line break, or the leading part of a stage folder's
    copy) is a UserError that says so and names the copy to restore it from."""
    text = saved.read_bytes().decode("utf-8", "replace")
    damaged = None
    try:
        loaded = OmegaConf.load(saved)
    except Exception as exc:  # yaml's ScannerError/ParserError, omegaconf's own errors
        damaged = f"not valid YAML ({_yaml_problem(exc)})"
    else:
        longer = [c for c in copies if len(c.read_bytes()) > len(text.encode())
                  and c.read_bytes().startswith(text.encode())]
        if not isinstance(loaded, DictConfig) or "stages" not in loaded:
            damaged = "it holds no stages (it is empty or cut short)"
        elif longer:
            damaged = (f"it is cut short ({len(text.encode())} bytes; its copy {longer[0]} has "
                       f"{longer[0].stat().st_size} and begins with the same bytes)")
        elif text and not text.endswith("\n"):
            damaged = "it is cut short (it ends in the middle of a line; mdreg writes whole files)"
    if damaged:
        raise UserError(f"{saved} is damaged: {damaged}, probably by an interrupted copy or sync. Nothing was "
                        f"changed. {_restore_hint(saved, copies)}")
    return load_config(saved)


def _stage_copy(plan: RunPlan, copies: list[Path]):
    """``(path, tree)`` of the first stage folder's config.yaml that reads, for a run whose
    config.yaml is gone; ``(None, None)`` for a new run. Stage folders holding training output
    but no readable copy are refused: nothing tells which config they were trained with."""
    for copy in copies:
        try:
            return copy, read_saved_config(copy, [])
        except UserError:
            continue
    trained = [plan.folder(s.name) for s in plan.stages
               if (plan.folder(s.name) / "checkpoints").is_dir() or (plan.folder(s.name) / "metrics.jsonl").is_file()]
    if trained:
        damaged = f" ({', '.join(map(str, copies))} cannot be read)" if copies else ""
        raise UserError(f"{plan.run_dir / 'config.yaml'} is missing and no stage folder holds a readable copy"
                        f"{damaged}, but {', '.join(map(str, trained))} hold(s) training output: nothing tells whether "
                        f"this recipe is the one they were trained with. Nothing was changed. Restore config.yaml from "
                        f"a backup, or start a new run with train.run_name=NEW_NAME")
    return None, None


def check_checkpoints_left(plan: RunPlan) -> None:
    """Refuse a stage whose records (``checkpoints/last``, metrics.jsonl) say it reached a step
    past its first checkpoint but whose folder holds no checkpoint any more: relaunching would
    train it again from step 0 (and a later stage would start from those new weights)."""
    from mdreg.engine.checkpoint import CheckpointManager, checkpoint_step
    from mdreg.runs.records import read_stage

    for stage in plan.stages:
        folder = plan.folder(stage.name)
        manager = CheckpointManager(folder / "checkpoints")
        if not folder.is_dir() or manager.steps():
            continue
        evidence, reached = [], 0
        pointer = manager.folder / "last"
        named = pointer.read_text(errors="replace").strip() if pointer.is_file() else ""
        if named and (step := checkpoint_step(Path(named))) >= 0:
            evidence.append(f"'last' names {named}")
            reached = step
        record = read_stage(folder, stage.steps)
        first = plan.settings.ckpt_every or stage.steps  # the step of the stage's first checkpoint
        closed = [l for l in record.launches if l.closed_by in ("end", "stopped")]  # each saved a checkpoint first
        if record.done > first or closed:
            evidence.append(f"{folder / 'metrics.jsonl'} logs step {record.done}")
            reached = max(reached, record.done)
        if not evidence:
            continue  # killed before its first checkpoint: starting over loses nothing
        aside = manager.damaged()
        damaged = f" (only {', '.join(p.name for p in aside)}, set aside as unreadable)" if aside else ""
        gone = f"{manager.folder} holds no checkpoint{damaged}" if manager.folder.is_dir() else \
            f"its checkpoints folder {manager.folder} is gone"
        raise UserError(f"stage {stage.name!r} of {plan.run_dir}: its records say it reached step {reached} "
                        f"({'; '.join(evidence)}), but {gone}. Nothing was "
                        f"changed. Put the checkpoints back into that folder to resume, or move the stage folder "
                        f"aside (mv {folder} {folder}.old) to train the stage again from step 0")


def _shown(differences: list[tuple]) -> str:
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in differences[:6])
    return shown + (f" (+{len(differences) - 6} more)" if len(differences) > 6 else "")


def write_stage_config(plan: RunPlan, stage: str) -> None:
    """Each stage folder carries the run's config.yaml too, so it is self-describing."""
    folder = plan.run_dir / stage
    check_writable(folder)
    if not (folder / "config.yaml").is_file():
        atomic_write_text(folder / "config.yaml", dump_yaml(plan.cfg))


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


def read_run_config(run_dir: str | Path):
    """``RUN_DIR/config.yaml``, its plugins imported: every process that builds from a run reads
    its config here (Slurm stage and evaluation jobs, tools/sample.py, evaluate.py, report.py)."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    import_plugins(plugins_of(cfg), f"{run_dir / 'config.yaml'}: plugins")
    return cfg


def read_meta(run_dir: str | Path) -> dict:
    """``RUN_DIR/meta.yaml`` as a dict ({} when it is missing)."""
    path = Path(run_dir) / "meta.yaml"
    if not path.is_file():
        return {}
    try:
        meta = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as exc:  # a damaged or hand-edited file: say which, not a parser traceback
        raise UserError(f"{path} is not valid YAML ({type(exc).__name__}: {str(exc).splitlines()[0]}); restore it "
                        f"from a backup, or delete it (it records how the run was made, not what it trained)") from None
    return meta if isinstance(meta, dict) else {}


def _meta_if_readable(run_dir: Path) -> dict:
    """meta.yaml for the checks that use it; a damaged one does not stop a resume (it records how
    the run was made, not what it trained)."""
    try:
        return read_meta(run_dir)
    except UserError:
        return {}


def plan_of_run(run_dir: str | Path) -> RunPlan:
    """The plan of an existing run directory, wherever it lies now: its config.yaml (plugins
    imported, stages built once) and meta.yaml."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    meta = read_meta(run_dir)
    recipe = Path(str(meta.get("recipe") or f"{run_dir.parent.name}.py"))
    stages = [plan_stage(cfg, name) for name in cfg.stages.keys()]
    return RunPlan(recipe, run_dir.parent.name, run_dir.name, run_dir, cfg, list(meta.get("overrides") or []), stages,
                   TrainSettings.from_config(cfg.train), [], dict(meta.get("sweep_values") or {}))
