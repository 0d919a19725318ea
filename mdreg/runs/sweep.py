"""Sweeps: several runs from one command.

Sources:

* a recipe's declared ``sweep``: either a mapping ``{key: [values]}`` (cartesian product)
  or a list of elements ``[{key: value, ..., "_name_": run_name}, ...]`` (an explicit grid,
  e.g. the cells of a paper's table);
* swept command-line overrides (``key=a,b,c``, ``key=range(0,3)``) and ``--sweep`` arguments,
  whose cartesian product is taken within each declared element.

Keys of a declared element use the command line's prefixes: ``key`` changes a value (a
whole sub-tree may be given, e.g. a masker node), ``+key`` adds one, ``++key`` adds or
changes, and ``~key: null`` deletes one. Deleting is how an element drops a stage: the
from-scratch baseline of MaskDM Table 1 is ``{"~stages.pretrain": None,
"stages.finetune.init_from": None, "stages.finetune.steps": 250000, "_name_": "scratch"}``.

Order of application for one run (:func:`mdreg.runs.plan.build_plans`): the element's
declared overrides, then the command line's overrides, then its swept values — the
command line wins. A command-line override of a key that the element deleted (e.g.
``stages.pretrain.batch_size=8`` for the ``scratch`` element) is skipped for that element
with a note, so one command can adjust every cell of a grid.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.overrides import Override, Sweep
from mdreg.errors import ConfigError, did_you_mean

_PREFIXES = (("++", "force_add"), ("+", "add"), ("~", "delete"))


@dataclass
class Element:
    """One run of a sweep: the declared cell (if any) and one combination of swept values."""

    declared: list[Override] = field(default_factory=list)
    swept: list[Override] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    name: str | None = None

    @property
    def deleted(self) -> list[str]:
        """Keys this element's declaration deletes (``~key``)."""
        return [o.key for o in self.declared if o.kind == "delete"]


def text_of(key: str, value, kind: str = "change") -> str:
    """The command-line spelling of one override (for run names and ``meta.yaml``)."""
    prefix = {"add": "+", "force_add": "++", "delete": "~"}.get(kind, "")
    if kind == "delete":
        return f"~{key}"
    if isinstance(value, (dict, list)):
        shown = json.dumps(value, separators=(",", ":"), default=str)
    elif value is None:
        shown = "null"
    elif isinstance(value, bool):
        shown = str(value).lower()
    else:
        shown = str(value)
    return f"{prefix}{key}={shown}"


def _split_key(raw: str, where: str) -> tuple[str, str]:
    for prefix, kind in _PREFIXES:
        if raw.startswith(prefix):
            key = raw[len(prefix):]
            if not key:
                raise ConfigError(f"{where}: {raw!r} names no key")
            return key, kind
    return raw, "change"


def _element(row: dict, where: str) -> Element:
    row = dict(row)
    name = row.pop("_name_", None)
    overrides, values = [], {}
    for raw, value in row.items():
        key, kind = _split_key(str(raw), where)
        if kind == "delete" and value is not None:
            raise ConfigError(f"{where}: {raw!r} deletes {key}; give it the value null (got {value!r})")
        overrides.append(Override(key, None if kind == "delete" else value, kind, text_of(key, value, kind)))
        values[str(raw)] = value
    if name is not None:
        name = str(name)
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError(f"{where}: _name_ {name!r} must be a folder name without '/'")
        values["_name_"] = name
    return Element(declared=overrides, values=values, name=name)


def declared(cfg: DictConfig) -> list[Element]:
    """The elements of the recipe's own ``sweep`` (one empty element if it has none)."""
    spec = cfg.get("sweep")
    if spec is None or (isinstance(spec, (DictConfig, ListConfig)) and len(spec) == 0):
        return [Element()]
    spec = OmegaConf.to_container(spec, resolve=False)  # interpolations resolve later, in the run's tree
    if isinstance(spec, dict):
        keys = list(spec)
        for key in keys:
            if not isinstance(spec[key], list) or not spec[key]:
                raise ConfigError(f"sweep.{key} must be a non-empty list of values")
            if str(key).startswith("~"):
                raise ConfigError(f"sweep.{key}: a deletion cannot be swept over values; use a list of elements")
        rows = [dict(zip(keys, combo)) for combo in itertools.product(*(spec[k] for k in keys))]
    elif isinstance(spec, list):
        rows = spec
    else:
        raise ConfigError("sweep must be a mapping {key: [values]} or a list of {key: value} elements")
    elements, seen = [], {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"sweep[{i}] must be a mapping of key: value, got {row!r}")
        element = _element(row, f"sweep[{i}]")
        if element.name is not None:
            if element.name in seen:
                raise ConfigError(f"sweep[{i}] and sweep[{seen[element.name]}] are both named {element.name!r}; "
                                  f"sweep element names (_name_) must be unique")
            seen[element.name] = i
        elements.append(element)
    return elements


def select(elements: list[Element], names: list[str] | None) -> list[Element]:
    """The declared elements named ``names`` (``--only``), in the recipe's order."""
    if not names:
        return elements
    known = [e.name for e in elements if e.name is not None]
    unknown = [n for n in names if n not in known]
    if unknown:
        listing = ", ".join(known) if known else "none (the recipe's sweep has no _name_ entries)"
        raise ConfigError(f"--only {unknown[0]}: no sweep element of that name{did_you_mean(unknown[0], known)}; "
                          f"elements: {listing}")
    return [e for e in elements if e.name in names]


def expand(cfg: DictConfig, sweeps: list[Sweep], only: list[str] | None = None) -> list[Element]:
    """All runs: the recipe's declared elements (or those in ``only``) times the command-line product."""
    combos: list[list[Override]] = [[]]
    if sweeps:
        combos = [[Override(s.key, v, s.kind, text_of(s.key, v, s.kind)) for s, v in zip(sweeps, combo)]
                  for combo in itertools.product(*(s.values for s in sweeps))]
    out = []
    for base in select(declared(cfg), only):
        for swept in combos:
            out.append(Element(base.declared, swept, {**base.values, **{o.key: o.value for o in swept}}, base.name))
    return out
