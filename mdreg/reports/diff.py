"""What differs between two recipes: ``python tools/launch.py --diff A B [overrides]``.

``A`` and ``B`` are recipe files, optionally naming one element of the recipe's declared
sweep as ``RECIPE@NAME`` (``recipes/maskdm_celeba64_table1.py@m50_block2``). A recipe
without ``@NAME`` is compared as written (its ``sweep`` declaration left out). The
overrides apply to ``B``, so ``--diff R R key=value`` shows what an override changes.
Keys are compared after resolving interpolations (``${oc.env:MDREG_DATA,/data}``,
``${paths.celeba}``); every leaf that differs is listed with both values side by side.

``--diff RUN_DIR_A RUN_DIR_B`` compares two runs: their saved ``config.yaml`` (resolved as
above) and their provenance (:mod:`mdreg.provenance`): ``meta.yaml``'s, written when the run
was created, and each stage's launches, the ``start`` (and ``end``) events of its
metrics.jsonl in order (``<stage>.start.<i>.git.commit``, ...): which code, software,
GPUs, hosts and Slurm jobs made each run.
"""
from __future__ import annotations

import copy
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from mdreg.config import load_config, load_recipe
from mdreg.config.diff import diff_trees
from mdreg.config.overrides import apply_overrides
from mdreg.errors import UserError


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``recipes/x.py@name`` -> (path, "name"); ``recipes/x.py`` -> (path, None)."""
    path, _, name = str(spec).partition("@")
    if not path.endswith(".py"):
        raise UserError(f"--diff {spec!r}: expected a recipe file (recipes/NAME.py or recipes/NAME.py@ELEMENT)")
    return Path(path), (name or None)


def config_of(spec: str, overrides: list[str] = ()) -> DictConfig:
    """The tree of recipe ``spec`` (one sweep element with ``@NAME``) after ``overrides``."""
    from mdreg.runs.plan import build_plans, with_sweep_removed

    path, name = split_spec(spec)
    if name is not None:
        (plan,) = build_plans(path, list(overrides), only=[name])
        return plan.cfg
    cfg = copy.deepcopy(load_recipe(path))
    if overrides:
        apply_overrides(cfg, list(overrides))
    if "sweep" in cfg:
        with_sweep_removed(cfg)
    return cfg


def resolved(cfg: DictConfig) -> object:
    """Plain containers with interpolations resolved (kept as written where they cannot be)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation to a key the other overrides removed: show it as written
        return OmegaConf.to_container(cfg, resolve=False)


def diff_recipes(a: str, b: str, overrides: list[str] = ()) -> list[tuple[str, object, object]]:
    """``(key, value in A, value in B)`` for every differing leaf."""
    return diff_trees(resolved(config_of(a)), resolved(config_of(b, overrides)))


def format_diff(rows: list[tuple[str, object, object]], a: str, b: str, width: int = 48) -> str:
    if not rows:
        return f"no differences between {a} and {b}"

    def cell(value: object) -> str:
        text = "null" if value is None else str(value)
        return text if len(text) <= width else text[:width - 3] + "..."

    table = tabulate([[k, cell(va), cell(vb)] for k, va, vb in rows], headers=["key", a, b], disable_numparse=True)
    return f"{len(rows)} key(s) differ\n{table}"


def run_provenance(run_dir: str | Path) -> dict:
    """``{"meta": ..., "<stage>": {"start": [...], "end": [...]}}``: the provenance a run recorded."""
    from mdreg.runs.records import read_jsonl
    from mdreg.runs.rundir import read_meta  # a damaged meta.yaml is one error naming it

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    out: dict = {"meta": meta.get("provenance", "<none recorded>")}
    for stage in meta.get("stages") or sorted(p.name for p in run_dir.iterdir() if (p / "metrics.jsonl").is_file()):
        events = read_jsonl(run_dir / stage / "metrics.jsonl")
        out[stage] = {kind: [e.get("provenance", "<none recorded>") for e in events if e.get("event") == kind]
                      for kind in ("start", "end")}
    return out


Rows = list[tuple[str, object, object]]


def diff_runs(a: str | Path, b: str | Path) -> tuple[Rows, Rows]:
    """(config rows, provenance rows) in which the runs ``a`` and ``b`` differ."""
    configs = [resolved(load_config(Path(run) / "config.yaml")) for run in (a, b)]
    return diff_trees(*configs), diff_trees(run_provenance(a), run_provenance(b))


def format_run_diff(a: str | Path, b: str | Path) -> str:
    config, provenance = diff_runs(a, b)
    return "\n".join(["# config", format_diff(config, str(a), str(b)), "", "# provenance",
                      format_diff(provenance, str(a), str(b))])
