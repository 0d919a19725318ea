"""Write a run's config tree to YAML and read it back identically.

Only plain values can be written: a lambda, a local function or any other object in the
tree is refused at save time, with the key that holds it and the fix (register the
function and refer to it by name). :func:`load_config` returns the same tree the run used
(interpolations are kept, not resolved), in struct mode. The file itself is written
atomically (:func:`mdreg.io.atomic_write_text`).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.lazy import node
from mdreg.errors import ConfigError
from mdreg.io import atomic_write_text

_PLAIN = (str, int, float, bool, type(None))


def _unserialisable(cfg: Any, prefix: str = ""):
    if isinstance(cfg, DictConfig):
        items = [(k, cfg._get_node(k)) for k in cfg.keys()]
    elif isinstance(cfg, ListConfig):
        items = [(i, cfg._get_node(i)) for i in range(len(cfg))]
    else:
        return
    for k, child in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(child, (DictConfig, ListConfig)):
            yield from _unserialisable(child, key)
            continue
        value = child._value()
        if not isinstance(value, _PLAIN):
            yield key, value


def _why(value: Any) -> str:
    name = getattr(value, "__qualname__", type(value).__name__)
    if callable(value) and "<lambda>" in name:
        return "a lambda"
    if callable(value) and "<locals>" in name:
        return f"the local function {name}"
    if inspect.isclass(value) or callable(value):
        return f"{name}, which cannot be imported by name"
    return f"a {type(value).__name__} object"


def check_serialisable(cfg: DictConfig | ListConfig) -> None:
    """Raise one ConfigError listing every key whose value cannot be written to YAML."""
    bad = list(_unserialisable(cfg))
    if bad:
        lines = "; ".join(f"{key} holds {_why(value)}" for key, value in bad)
        raise ConfigError(f"config cannot be saved: {lines}. Configs hold plain values only: register the "
                          f"function or class (e.g. @BACKBONES.register(\"name\")) and refer to it as 'kind:name', "
                          f"or move it to a module and use its dotted path")


def dump_yaml(cfg: DictConfig) -> str:
    check_serialisable(cfg)
    return OmegaConf.to_yaml(cfg, resolve=False, sort_keys=False)


def save_config(cfg: DictConfig, path: str | Path) -> None:
    atomic_write_text(path, dump_yaml(cfg))


def load_config(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable YAML config ({exc})") from None
    cfg = node(OmegaConf.to_container(loaded, resolve=False))
    OmegaConf.set_struct(cfg, True)
    return cfg
