"""Walking config trees by dotted key."""
from __future__ import annotations

from typing import Any, Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf


def iter_keys(cfg: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key in the tree (containers and leaves), depth first."""
    if isinstance(cfg, DictConfig):
        items = ((k, cfg._get_node(k)) for k in cfg.keys())
    elif isinstance(cfg, ListConfig):
        items = ((i, cfg._get_node(i)) for i in range(len(cfg)))
    else:
        return
    for k, child in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        yield key
        if isinstance(child, (DictConfig, ListConfig)):
            yield from iter_keys(child, key)


def get(cfg: Any, key: str, default: Any = None) -> Any:
    """``OmegaConf.select`` that does not resolve interpolations badly on missing keys."""
    return OmegaConf.select(cfg, key, default=default, throw_on_missing=False)


def split(key: str) -> tuple[str, str]:
    """``"a.b.c"`` -> ``("a.b", "c")``."""
    parent, _, leaf = key.rpartition(".")
    return parent, leaf


def to_plain(cfg: Any) -> Any:
    """Plain dicts/lists, interpolations kept as strings (for comparing trees)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=False)
    return cfg


def check_interpolations(cfg: Any) -> None:
    """Every ``${...}`` in ``cfg`` resolves, or one ConfigError names the key (before a run starts
    or a job is queued, rather than at the first access inside it)."""
    from omegaconf.errors import OmegaConfBaseException

    from mdreg.errors import ConfigError

    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        reason = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ConfigError(f"{exc.full_key}: cannot resolve it: {reason}; fix the ${{...}} reference") from None
