"""Lazy calls: ``L(target)(key=value, ...)`` records a call as a config node.

A lazy node is an omegaconf ``DictConfig`` with a ``_target_`` key and the call's keyword
arguments; nothing is built until :func:`mdreg.config.instantiate`. ``_target_`` is a
registry reference (``"backbone:maskdm_s"``) for registered components, or an importable
dotted path (``"torch.optim.AdamW"``) for anything else, so trees always dump to YAML.
A lambda or local function cannot be named; it is kept as an object so that the mistake is
reported at save time with the key that holds it.

Special keys: ``_partial_: true`` makes instantiate return a ``functools.partial`` (for
factories whose remaining arguments the trainer supplies, e.g. an optimizer's params);
``{"_ref_": "pkg.mod.obj"}`` stands for the object itself, not a call.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.errors import ConfigError, did_you_mean
from mdreg.registry import REGISTRIES, is_ref, lookup, ref_of

TARGET, PARTIAL, REF = "_target_", "_partial_", "_ref_"
META_KEYS = (TARGET, PARTIAL)


def importable_path(obj: Any) -> str | None:
    """The shortest ``package.qualname`` that imports back to ``obj`` (``torch.optim.AdamW``
    rather than ``torch.optim.adamw.AdamW``); None for lambdas, local functions and other
    objects that cannot be named."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    parts = module.split(".")
    for cut in range(1, len(parts) + 1):
        prefix = ".".join(parts[:cut])
        try:
            found = importlib.import_module(prefix)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            continue
        if found is obj:
            return f"{prefix}.{qualname}"
    return None


def target_string(target: Any) -> Any:
    """What ``_target_`` stores for ``target``: a registry ref, a dotted path, or (for
    unnameable callables) the object itself."""
    if isinstance(target, str):
        return target
    if not callable(target):
        raise ConfigError(f"L(...) needs a class, a function or a 'kind:name' string, got {target!r}")
    return ref_of(target) or importable_path(target) or target


def _wrap_value(value: Any) -> Any:
    """Callables passed as arguments become ``{_ref_: path}`` nodes (or stay objects if
    they cannot be named, to be refused at save time)."""
    if isinstance(value, (DictConfig, ListConfig, str, int, float, bool)) or value is None:
        return value
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        path = ref_of(value) or importable_path(value)
        return {REF: path} if path else value
    if isinstance(value, dict):
        return {k: _wrap_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wrap_value(v) for v in value]
    return value


def node(data: dict | list) -> DictConfig | ListConfig:
    """An omegaconf container that may hold objects (so that bad values are reported at
    save time with their key, not at creation with a cryptic omegaconf error)."""
    return OmegaConf.create(data, flags={"allow_objects": True})


class LazyCall:
    """``L(target)(**kwargs)`` -> a config node that calls ``target(**kwargs)`` when instantiated."""

    def __init__(self, target: Any):
        self._target = target_string(target)

    def __call__(self, *args, **kwargs) -> DictConfig:
        if args:
            raise ConfigError(f"L({self._target!r})(...) takes keyword arguments only (configs name every value)")
        return node({TARGET: self._target, **{k: _wrap_value(v) for k, v in kwargs.items()}})


L = LazyCall


def is_lazy(value: Any) -> bool:
    """True for a config node that describes a call (has ``_target_``)."""
    return isinstance(value, (DictConfig, dict)) and TARGET in value


def is_object_ref(value: Any) -> bool:
    return isinstance(value, (DictConfig, dict)) and REF in value and len(value) == 1


def resolve_target(target: Any, key: str = "") -> Any:
    """Turn a ``_target_`` value into the callable it names."""
    where = f"{key}._target_" if key else "_target_"
    if callable(target):
        return target
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: expected 'kind:name' or a dotted import path, got {target!r}")
    if is_ref(target):
        try:
            return lookup(target)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except KeyError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if ":" in target:
        kind = target.split(":")[0]
        raise ConfigError(f"{where}: unknown registry kind {kind!r}{did_you_mean(kind, REGISTRIES)} in {target!r}")
    return import_object(target, where)


def import_object(path: str, where: str = "") -> Any:
    """Import ``a.b.c`` as module ``a.b`` attribute ``c`` (or deeper attributes)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            break
        return obj
    raise ConfigError(f"{where or path}: cannot import {path!r}; use a registry name like 'backbone:maskdm_s' "
                      f"or an importable dotted path")


def target_ref(value: Any) -> str | None:
    """The ``_target_`` string of a lazy node (None if it is not one or holds an object)."""
    if is_lazy(value):
        target = value[TARGET] if not isinstance(value, DictConfig) else value._get_node(TARGET)._value()
        return target if isinstance(target, str) else None
    return None
