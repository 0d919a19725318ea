"""Sweeps: several runs from one command, as the cartesian product of swept values.

Sources: swept overrides (``key=a,b,c``, ``key=range(0,3)``) and ``--sweep`` arguments,
and a recipe's declared ``sweep``: either a mapping ``{key: [values]}`` (cartesian
product) or a list of elements ``[{key: value, ...}, ...]`` (an explicit grid, e.g. the
cells of a paper's table; an element may carry ``_name_`` for its run name). The
command-line product is taken within each declared element.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.overrides import Override, Sweep
from mdreg.errors import ConfigError


@dataclass
class Element:
    overrides: list[Override] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)


def _text(key: str, value) -> str:
    if isinstance(value, str):
        return f"{key}={value}"
    return f"{key}={OmegaConf.to_yaml({'v': value}).split(':', 1)[1].strip()}" if isinstance(value, (dict, list)) \
        else f"{key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}"


def declared(cfg: DictConfig) -> list[Element]:
    """The elements of the recipe's own ``sweep`` (one empty element if it has none)."""
    spec = cfg.get("sweep")
    if spec is None or (isinstance(spec, (DictConfig, ListConfig)) and len(spec) == 0):
        return [Element()]
    spec = OmegaConf.to_container(spec, resolve=True)
    if isinstance(spec, dict):
        keys = list(spec)
        for key in keys:
            if not isinstance(spec[key], list) or not spec[key]:
                raise ConfigError(f"sweep.{key} must be a non-empty list of values")
        combos = itertools.product(*(spec[k] for k in keys))
        rows = [dict(zip(keys, combo)) for combo in combos]
    elif isinstance(spec, list):
        rows = spec
    else:
        raise ConfigError("sweep must be a mapping {key: [values]} or a list of {key: value} elements")
    elements = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"sweep[{i}] must be a mapping of key: value, got {row!r}")
        row = dict(row)
        name = row.pop("_name_", None)
        overrides = [Override(k, v, "change", _text(k, v)) for k, v in row.items()]
        values = dict(row)
        if name is not None:
            overrides.append(Override("train.run_name", str(name), "force_add", f"train.run_name={name}"))
            values["_name_"] = name
        elements.append(Element(overrides, values))
    return elements


def expand(cfg: DictConfig, sweeps: list[Sweep]) -> list[Element]:
    """All elements: the recipe's declared ones times the command-line product."""
    cli = [Element()]
    if sweeps:
        cli = []
        for combo in itertools.product(*(s.values for s in sweeps)):
            cli.append(Element([Override(s.key, v, s.kind, _text(s.key, v)) for s, v in zip(sweeps, combo)],
                               {s.key: v for s, v in zip(sweeps, combo)}))
    out = []
    for base in declared(cfg):
        for extra in cli:
            out.append(Element(base.overrides + extra.overrides, {**base.values, **extra.values}))
    return out
