"""Run directories: create them safely and refuse to mix two different runs in one.

``<output_root>/<recipe>/<run name>/`` holds ``config.yaml`` (the exact tree, reloadable),
``meta.yaml`` (recipe path, overrides, command line, times, provenance) and one folder per stage.
Relaunching the same command finds the same ``config.yaml`` and resumes. If the saved
config differs from the new one in what is trained, nothing is touched and the error lists
the differing keys: a changed recipe must not silently continue (or overwrite) an earlier
run. Keys that say where and how the run executes (``launch.*``, ``paths.*``,
``evaluation.*``, ``train.device``, ``train.num_workers``: :func:`mdreg.runs.plan.changes_training`)
may change on resume, e.g. on another machine; the saved configs are updated and the
change is printed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from mdreg.config.diff import diff_trees
from mdreg.config.serialize import dump_yaml, load_config
from mdreg.engine.stage import TrainSettings, plan_stage
from mdreg.errors import UserError
from mdreg.io import atomic_write_text
from mdreg.plugins import import_plugins, plugins_of
from mdreg.provenance import collect
from mdreg.runs.extension import accept_lengths, is_length, set_aside_stale_stages
from mdreg.runs.plan import RunPlan, changes_training


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
    """Make the run directory and write (or verify) its config.yaml."""
    text = dump_yaml(plan.cfg)  # refuses lambdas etc. before anything is written
    saved = plan.run_dir / "config.yaml"
    if saved.is_file():
        differences = diff_trees(load_config(saved), plan.cfg)
        trained = [d for d in differences if changes_training(d[0]) and not is_length(d[0])]
        extended = accept_lengths(plan, [d for d in differences if is_length(d[0])])  # docs: mdreg.runs.extension
        if trained:
            raise UserError(f"{plan.run_dir} already holds a run with a different config ({_shown(trained)}). "
                            f"Nothing was changed. Start a new run with train.run_name=NEW_NAME, or restore "
                            f"the recipe to resume this one")
        for line in [*extended, *set_aside_stale_stages(plan)]:
            print(f"{plan.run_dir}: {line}", flush=True)
        if differences:  # where/how it runs (another machine, other resources): same run, settings updated
            for path in [saved, *sorted(plan.run_dir.glob("*/config.yaml"))]:
                atomic_write_text(path, text)
            print(f"{plan.run_dir}: resuming with changed run settings ({_shown(differences)}); config.yaml updated",
                  flush=True)
        return
    check_writable(plan.run_dir)
    atomic_write_text(saved, text)
    meta = {"recipe": str(plan.recipe), "overrides": plan.overrides, "sweep_values": plan.sweep_values,
            "command": " ".join(sys.argv), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "stages": [s.name for s in plan.stages],
            "provenance": collect()}  # git commit/dirty, versions, GPUs, host, Slurm job (mdreg/provenance.py)
    atomic_write_text(plan.run_dir / "meta.yaml", OmegaConf.to_yaml(OmegaConf.create(meta)))


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
