"""From a recipe and command-line arguments to the runs to execute ("plans").

A plan is everything an executor needs: the resolved config tree, the run directory
``<output_root>/<recipe>/<run name>/`` and the ordered stages with their steps, batch,
folders and parent stage. Sweeps (``--sweep`` or swept overrides ``key=a,b``, and a
recipe's declared ``sweep``, see :mod:`mdreg.runs.sweep`) expand into one plan per
element, each with its own run name and directory; ``only`` keeps the named elements.

Run names: ``train.run_name`` when the command line (or the recipe) sets it (a sweep
element appends its name and swept values: ``demo+seed-1``); a declared element's
``_name_``; ``default`` for the recipe as written. Command-line overrides are appended, each as
``key-value`` without its ``train.``/``stages.`` prefix, joined by ``+`` (``m50_block2+lr-2e-4``),
so that the same command always maps to the same directory (relaunching resumes) and a
different command never overwrites another run. Names hold only ``A-Z a-z 0-9 _ . + -``: a
run directory can be written in an override (``init_from=runs/x/lr-2e-4/pretrain``) unquoted.
A name over :data:`MAX_NAME` characters keeps its start and ends in a hash of the rest (the
full overrides are in ``meta.yaml``, their values in ``config.yaml``); an undeclared sweep
element's swept values come first because they tell the elements apart.
Keys that do not change what is trained stay out of names (:data:`NAME_EXCLUDED`): where and
how it runs (``launch.*``, ``paths.*``, device, loader workers, logging and checkpoint
cadence), how it is measured (``evaluation.*``, each stage's ``sample`` grids and ``evaluate``
metric) and ``train.max_steps`` (a cap: the capped run is a prefix of the full one, and raising
the cap continues it).

Stages: a plan holds each stage's :class:`~mdreg.engine.stage.TrainStage`, built once by
:func:`~mdreg.engine.stage.plan_stage` and checked against the backbone on the meta device
(:func:`~mdreg.engine.parts.check_stage`); executors build the heavy parts around these same
objects. Stages run in the order the recipe declares them. A stage's ``init_from`` may name
``"previous"`` or any EARLIER stage, so the stages form a tree: MaskDiT's two unmasking
tunings both start from ``main`` (siblings), MaskDM Table 3's two fine-tunings both start
from ``pretrain``. ``stage.parent`` is that stage (None for a fresh start or a checkpoint
file); executors chain jobs on it (Slurm: ``afterok`` on the parent only, so siblings may
run in parallel).

Plugins: the run's ``plugins`` (the recipe's list and ``--import`` modules, :mod:`mdreg.plugins`)
are imported before anything is built and recorded in the plan's config (``config.yaml``).
"""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, open_dict

from mdreg.config.loader import load_recipe
from mdreg.config.overrides import Override, apply_overrides, parse_overrides
from mdreg.config.serialize import check_serialisable
from mdreg.config.tree import check_interpolations
from mdreg.engine.parts import check_stage
from mdreg.engine.stage import TrainSettings, TrainStage, plan_stage
from mdreg.errors import ConfigError, did_you_mean
from mdreg.io import is_uri
from mdreg.plugins import import_plugins, plugins_of
from mdreg.runs.sweep import expand

# where and how a run executes, logs and keeps checkpoints, how it is measured, and the cap on its
# steps; not what it trains (its RNG is keyed by step, so checkpoint cadence, workers, grids and
# metrics do not change a single number, and a capped run is a prefix of the full one)
NAME_EXCLUDED = ("launch.", "evaluation.", "paths.", "plugins", "train.output_root", "train.run_name", "train.device",
                 "train.num_workers", "train.log_every", "train.ckpt_every", "train.keep_last",
                 "train.milestone_every", "train.max_steps", "stages.*.sample", "stages.*.evaluate")


@dataclass
class RunPlan:
    recipe: Path
    recipe_name: str
    run_name: str
    run_dir: Path
    cfg: DictConfig
    overrides: list[str]
    stages: list[TrainStage]
    settings: TrainSettings
    notes: list[str] = field(default_factory=list)
    sweep_values: dict[str, object] = field(default_factory=dict)

    def stage(self, name: str) -> TrainStage:
        found = next((s for s in self.stages if s.name == name), None)
        if found is None:
            names = [s.name for s in self.stages]
            raise ConfigError(f"{self.run_dir} has no stage {name!r}{did_you_mean(name, names)} "
                              f"(stages: {', '.join(names)})")
        return found

    def folder(self, stage: str) -> Path:
        """Where stage ``stage`` writes (``RUN_DIR/<stage>``)."""
        return self.run_dir / stage


MAX_NAME = 64


def _slug(text: str) -> str:
    """``text`` with characters outside ``A-Z a-z 0-9 _ . + -`` replaced by ``-``."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9_.+-]+", "-", text)).strip("-")


def _shortened(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name[:MAX_NAME - 9]
    cut = head.rfind("+")
    return (head[:cut] if cut > MAX_NAME // 2 else head) + "-" + digest


def changes_training(key: str) -> bool:
    """False for the keys that do not change what a run trains (:data:`NAME_EXCLUDED`): they stay
    out of run names, and a resumed run may change them."""
    return not any(key == e or key.startswith(e) or fnmatch.fnmatchcase(key, e) or fnmatch.fnmatchcase(key, e + ".*")
                   for e in NAME_EXCLUDED)


def _names_run(text: str) -> bool:
    return changes_training(text.lstrip("+~").split("=")[0])


def name_part(text: str) -> str:
    """One override as it appears in a run name: ``stages.pretrain.masker.ratio=0.75`` ->
    ``pretrain.masker.ratio-0.75``, ``~stages.pretrain`` -> ``del-pretrain``."""
    if "=" not in text and not text.startswith("~"):  # a sweep element's name
        return _slug(text)
    key, _, value = text.lstrip("+~").partition("=")
    key = re.sub(r"^(train|stages)\.", "", key)
    if text.startswith("~"):
        return f"del-{_slug(key)}"
    return f"{_slug(key)}-{_slug(value) or 'null'}"


def run_name_for(overrides: list[str], base: str | None = None) -> str:
    """``base`` (a sweep element's name) followed by the overrides that change training."""
    parts = ([_slug(base)] if base else []) + [name_part(text) for text in overrides if _names_run(text)
                                                 or "=" not in text and not text.startswith("~")]
    return _shortened("+".join(parts)) if parts else "default"


def make_plan(recipe: Path, cfg: DictConfig, overrides: list[str], notes: list[str],
              sweep_values: dict | None = None, run_name: str | None = None, check: bool = True) -> RunPlan:
    """The plan of one run of ``cfg``: its settings parsed, its stages built once (and, with
    ``check``, checked on the meta device: a bad value fails here, naming its key)."""
    if "stages" not in cfg or not cfg.stages:
        raise ConfigError("the recipe has no stages (stages = dict(name=L('stage:train')(...)))")
    check_interpolations(cfg)
    settings = TrainSettings.from_config(cfg.train)
    check_serialisable(cfg)  # config.yaml must be writable: a lambda fails the dry run too, naming its key
    stages = [plan_stage(cfg, name) for name in cfg.stages.keys()]
    if check:
        for stage in stages:
            check_stage(cfg, stage)
    recipe_name = recipe.stem
    run_name = run_name or settings.run_name or run_name_for(overrides)
    run_dir = Path(settings.output_root) / recipe_name / str(run_name)
    return RunPlan(recipe, recipe_name, str(run_name), run_dir, cfg, list(overrides), stages, settings, notes,
                   dict(sweep_values or {}))


def _under(key: str, prefixes: list[str]) -> str | None:
    return next((p for p in prefixes if key == p or key.startswith(p + ".")), None)


def build_plans(recipe: str | Path, args: list[str], sweep_args: list[str] = (),
                only: list[str] | None = None, imports: list[str] = ()) -> list[RunPlan]:
    """Load ``recipe``, apply ``args`` (overrides, possibly swept) and ``sweep_args``; one
    plan per sweep element (a single plan without sweeps). ``only``: run just the declared
    sweep elements with these ``_name_``s; ``imports``: plugin modules (``--import``) added to
    the recipe's ``plugins``."""
    recipe = Path(recipe)
    base = load_recipe(recipe)
    add_plugins(base, imports)
    import_plugins(plugins_of(base), f"{recipe}: plugins")  # before the overrides: they may name its components
    parsed = parse_overrides(list(args))
    swept = parse_overrides(list(sweep_args))
    if swept.overrides:
        raise ConfigError(f"--sweep {swept.overrides[0].text!r} has a single value; sweeps are key=a,b,c")
    cli_names_run = any(o.key == "train.run_name" for o in parsed.overrides)
    plans = []
    for element in expand(base, parsed.sweeps + swept.sweeps, only):
        cfg = copy.deepcopy(base)
        notes: list[str] = []
        cli: list[Override] = []
        for ov in [*parsed.overrides, *element.swept]:
            gone = _under(ov.key, element.deleted)
            if gone:
                notes.append(f"{element.name or 'this sweep element'}: {ov.text} not applied ({gone} is removed "
                             f"by the sweep element)")
            else:
                cli.append(ov)
        everything = [*element.declared, *cli]
        if everything:
            notes += apply_overrides(cfg, everything)
        if "sweep" in cfg:
            with_sweep_removed(cfg)
        _require_train(cfg)
        import_plugins(plugins_of(cfg), f"{recipe}: plugins")
        # swept values lead: they tell the elements apart, and a long name is cut at its end
        swept_texts = [o.text for o in element.swept]
        # the fixed overrides sorted: the same overrides in another order are the same run
        cli_texts = [*swept_texts, *sorted(o.text for o in cli if o.text not in swept_texts)]
        run_name = None
        if cli_names_run and (element.swept or element.name is not None):
            # train.run_name=NAME names the whole sweep: each element appends its own values
            own = ([element.name] if element.name is not None else []) + [o.text for o in element.swept]
            run_name = run_name_for(own, base=str(cfg.train.run_name))
        elif not cli_names_run and element.name is not None:
            run_name = run_name_for(cli_texts, base=element.name)
        elif not cli_names_run and not cfg.train.get("run_name"):
            run_name = run_name_for([*swept_texts, *(o.text for o in element.declared), *cli_texts[len(swept_texts):]])
        if element.name is not None and run_name is not None:  # the config records its cell's run name
            with open_dict(cfg.train):
                cfg.train.run_name = run_name
        plans.append(make_plan(recipe, cfg, [o.text for o in everything], notes, element.values, run_name))
    _check_distinct(plans)
    return plans


def _check_distinct(plans: list[RunPlan]) -> None:
    seen: dict[Path, RunPlan] = {}
    for plan in plans:
        if plan.run_dir in seen:
            other = seen[plan.run_dir]
            differ = sorted(k for k in {*plan.sweep_values, *other.sweep_values}
                            if plan.sweep_values.get(k) != other.sweep_values.get(k))
            if not differ:
                why = "they are the same run (a swept value is repeated, e.g. 0.5,0.50); drop the duplicate"
            elif not any(_names_run(f"{k}=") for k in differ):
                why = (f"they differ only in {', '.join(differ)}, which run names leave out "
                       f"({', '.join(NAME_EXCLUDED)} do not change what is trained)")
            else:
                why = "train.run_name names them all; do not set it for a sweep (each run gets its own name)"
            raise ConfigError(f"{len(plans)} runs of this sweep would share the run directory {plan.run_dir}: {why}")
        seen[plan.run_dir] = plan


def add_plugins(cfg: DictConfig, modules: list[str]) -> None:
    """Add ``modules`` (``--import``) to ``cfg.plugins``: the run records every plugin it needs."""
    modules = [m for m in modules if m not in plugins_of(cfg)]
    if modules:
        with open_dict(cfg):
            cfg.plugins = [*plugins_of(cfg), *modules]


def with_sweep_removed(cfg: DictConfig) -> None:
    """A sweep element's config no longer carries the sweep declaration."""
    with open_dict(cfg):
        del cfg["sweep"]


def _shown(value) -> str:
    return "null" if value is None else repr(value)


def _require_train(cfg: DictConfig) -> None:
    for key in ("train", "model", "data", "stages"):
        if key not in cfg:
            raise ConfigError(f"the recipe defines no {key!r} (every recipe needs train, model, data and stages; "
                              f"see recipes/quickstart.py)")
        if not isinstance(cfg[key], DictConfig):
            raise ConfigError(f"{key} is {_shown(cfg[key])}, but it must be a mapping (as in recipes/quickstart.py); "
                              f"override its keys ({key}.KEY=VALUE) instead of replacing it")


def missing_data(plan: RunPlan) -> list[str]:
    """One line per dataset folder the plan's stages read that does not exist on this machine, with
    the override that fixes it (``paths.<name>=...`` when the recipe takes the folder from ``paths``)."""
    out = []
    for stage in plan.stages:
        own = plan.cfg.stages[stage.name].get("dataset")
        key = f"stages.{stage.name}.dataset" if own is not None else "data.dataset"
        node = own if own is not None else plan.cfg.data.get("dataset")
        if node is None or "root" not in node:
            continue
        raw = node._get_node("root")._value() if hasattr(node, "_get_node") else node["root"]
        root = str(node.root)
        if is_uri(root) or Path(root).exists():
            continue
        fix = (raw[2:-1] if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") else f"{key}.root")
        line = f"{key}.root={root!r} does not exist on this machine; set {fix}=/where/it/is"
        if line not in out:
            out.append(line)
    return out
