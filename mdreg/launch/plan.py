"""From a recipe and command-line arguments to the runs to execute ("plans").

A plan is everything an executor needs: the resolved config tree, the run directory
``<output_root>/<recipe>/<run name>/`` and the ordered stages with their steps, batch and
folders. Sweeps (``--sweep`` or swept overrides ``key=a,b``, and a recipe's declared
``sweep``) expand into one plan per element, each with its own run name and directory.

Run names: ``train.run_name`` when set; otherwise ``default`` for the recipe as written,
or a name made from the overrides (``max_steps=50``), so that the same command always
maps to the same directory (relaunching resumes) and a different command never
overwrites another run. A sweep element's name ends with its swept values, kept readable
(``max_steps=50,seed=1``; ``NAME,seed=1`` with ``train.run_name=NAME``) unless the
recipe's sweep names the element (``_name_``). Two elements may never share a directory.
"""
from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mdreg.config import apply_overrides, load_recipe, parse_overrides
from mdreg.config.overrides import Override
from mdreg.errors import ConfigError

NAME_EXCLUDED = ("launch.", "train.output_root", "train.run_name", "train.device", "train.num_workers")


@dataclass
class StagePlan:
    name: str
    steps: int
    batch_size: int
    folder: Path
    init_from: str | None = None


@dataclass
class RunPlan:
    recipe: Path
    recipe_name: str
    run_name: str
    run_dir: Path
    cfg: DictConfig
    overrides: list[str]
    stages: list[StagePlan]
    notes: list[str] = field(default_factory=list)
    sweep_values: dict[str, object] = field(default_factory=dict)


def _slug(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.,=+-]+", "-", text).strip("-")
    if len(text) > 80:
        text = text[:60] + "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return text or "default"


def run_name_for(overrides: list[str]) -> str:
    parts = []
    for text in overrides:
        key = text.lstrip("+~").split("=")[0]
        if any(key == e or key.startswith(e) for e in NAME_EXCLUDED):
            continue
        short = re.sub(r"^(train|stages)\.", "", text.lstrip("+"))
        parts.append(short)
    return _slug(",".join(parts)) if parts else "default"


def _key(text: str) -> str:
    return text.lstrip("+~").split("=")[0]


def sweep_name(base: str, values: dict[str, object]) -> str:
    """``base`` followed by a sweep element's values (``default`` is dropped)."""
    shown = ",".join(f"{re.sub(r'^(train|stages)[.]', '', k)}={v}" for k, v in values.items())
    if not shown:
        return base
    return _slug(shown) if base == "default" else f"{base},{_slug(shown)}"


def stage_plans(cfg: DictConfig, run_dir: Path) -> list[StagePlan]:
    from mdreg.engine.trainer import effective_steps

    if "stages" not in cfg or not cfg.stages:
        raise ConfigError("the recipe has no stages (stages = dict(name=L('stage:train')(...)))")
    plans = []
    for name in cfg.stages.keys():
        node = cfg.stages[name]
        for key in ("steps", "batch_size"):
            if key not in node:
                raise ConfigError(f"stages.{name}.{key} is required")
        init = node.get("init_from")
        init = init if isinstance(init, str) or init is None else str(OmegaConf.to_container(init))
        plans.append(StagePlan(name, effective_steps(cfg, name), int(node.batch_size), run_dir / name, init))
    return plans


def make_plan(recipe: Path, cfg: DictConfig, overrides: list[str], notes: list[str],
              sweep_values: dict | None = None) -> RunPlan:
    from mdreg.engine.settings import validate_train

    validate_train(cfg.train)
    recipe_name = recipe.stem
    values = {k: v for k, v in (sweep_values or {}).items() if k != "_name_"}
    run_name = cfg.train.get("run_name")
    if run_name is None:
        run_name = sweep_name(run_name_for([t for t in overrides if _key(t) not in values]), values)
    elif values and "_name_" not in (sweep_values or {}):
        run_name = sweep_name(str(run_name), values)
    root = Path(cfg.train.get("output_root") or "runs")
    run_dir = root / recipe_name / str(run_name)
    return RunPlan(recipe, recipe_name, str(run_name), run_dir, cfg, list(overrides), stage_plans(cfg, run_dir),
                   notes, dict(sweep_values or {}))


def build_plans(recipe: str | Path, args: list[str], sweep_args: list[str] = ()) -> list[RunPlan]:
    """Load ``recipe``, apply ``args`` (overrides, possibly swept) and ``sweep_args``; one
    plan per sweep element (a single plan without sweeps)."""
    from mdreg.launch.sweep import expand

    recipe = Path(recipe)
    base = load_recipe(recipe)
    parsed = parse_overrides(list(args))
    swept = parse_overrides(list(sweep_args))
    if swept.overrides:
        raise ConfigError(f"--sweep {swept.overrides[0].text!r} has a single value; sweeps are key=a,b,c")
    elements = expand(base, parsed.sweeps + swept.sweeps)
    plans = []
    for element in elements:
        cfg = copy.deepcopy(base)
        element_overrides = [*parsed.overrides, *element.overrides]
        texts = [o.text for o in element_overrides]
        notes = apply_overrides(cfg, element_overrides) if element_overrides else []
        if "sweep" in cfg:
            with_sweep_removed(cfg)
        _require_train(cfg)
        plans.append(make_plan(recipe, cfg, texts, notes, element.values))
    seen: dict[Path, RunPlan] = {}
    for plan in plans:
        if plan.run_dir in seen:
            raise ConfigError(f"sweep elements {seen[plan.run_dir].sweep_values} and {plan.sweep_values} would share "
                              f"the run directory {plan.run_dir}; give the recipe's sweep elements distinct _name_s")
        seen[plan.run_dir] = plan
    return plans


def with_sweep_removed(cfg: DictConfig) -> None:
    """A sweep element's config no longer carries the sweep declaration."""
    from omegaconf import open_dict
    with open_dict(cfg):
        del cfg["sweep"]


def _require_train(cfg: DictConfig) -> None:
    for key in ("train", "model", "data", "stages"):
        if key not in cfg:
            raise ConfigError(f"the recipe defines no {key!r} (every recipe needs train, model, data and stages; "
                              f"see recipes/quickstart.py)")


__all__ = ["RunPlan", "StagePlan", "build_plans", "make_plan", "run_name_for", "Override"]
