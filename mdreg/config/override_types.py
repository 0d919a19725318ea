"""Type checks for overrides: a new value must fit the slot it replaces.

The expected type is the lazy node's target annotation when it is a plain type
(``power: float``), else the type of the value being replaced. Interpolations
(``${...}``) and null pass; a component, group or list is only replaced by a container.
"""
from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.lazy import is_lazy, resolve_target, target_ref
from mdreg.errors import ConfigError
from mdreg.registry import is_ref, registry

_SIMPLE = (bool, int, float, str)
_NAMES = {t.__name__: t for t in _SIMPLE}
_CONTAINERS = (dict, list, DictConfig, ListConfig)


def is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def annotation(parent: Any, leaf: str) -> Any:
    """How a lazy node's target annotates its parameter ``leaf`` (None if unknown)."""
    ref = target_ref(parent) if is_lazy(parent) else None
    try:
        target = resolve_target(ref) if ref else None
    except ConfigError:
        return None
    if target is None:
        return None
    try:
        param = inspect.signature(target, eval_str=True).parameters.get(leaf)
    except Exception:  # an unevaluable string annotation: keep the strings
        try:
            param = inspect.signature(target).parameters.get(leaf)
        except (TypeError, ValueError):
            return None
    return None if param is None or param.annotation is inspect.Parameter.empty else param.annotation


def is_any(hint: Any) -> bool:
    """An ``Any`` annotation (e.g. a stage's ``init_from``: a name or a dict)."""
    return hint in ("Any", "typing.Any", Any)


def simple_type(hint: Any) -> type | None:
    """bool/int/float/str when the annotation ``hint`` is one of them (or Optional)."""
    if isinstance(hint, str):  # unevaluated: "float", "int | None", "Optional[int]"
        parts = {p.strip() for p in hint.replace("Optional[", "").rstrip("]").split("|")} - {"None"}
        args = [_NAMES.get(p) for p in parts]
    elif typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
    else:
        args = [hint]
    return args[0] if len(args) == 1 and args[0] in _SIMPLE else None


def _raw(text: str, new: int | float) -> str:
    """The value as typed (``2.10`` stays ``2.10``, not hydra's float ``2.1``)."""
    raw = text.partition("=")[2].strip()
    try:
        return raw if float(raw) == new else str(new)
    except ValueError:
        return str(new)


def _coerce(expected: type, old: Any, new: Any, key: str, text: str) -> Any:
    number = isinstance(new, (int, float)) and not isinstance(new, bool)
    if expected is bool:
        if isinstance(new, bool):
            return new
        wanted = "true or false"
    elif expected is int:
        if number and (isinstance(new, int) or new.is_integer()):
            return int(new)
        wanted = "an integer"
    elif expected is float:
        if number:
            return float(new)
        wanted = "a number"
    else:
        if isinstance(new, str) or number:
            return new if isinstance(new, str) else _raw(text, new)
        wanted = "a string"
    now = f"current value {old!r}" if old is not None else f"declared {expected.__name__}"
    raise ConfigError(f"override {text!r}: {key} expects {wanted} ({now}), got {new!r} ({type(new).__name__})")


def _not_a_value(old: DictConfig | ListConfig, key: str) -> str:
    """Why a component, group or list cannot become a scalar, and what to write instead."""
    if isinstance(old, ListConfig):
        shown = OmegaConf.to_container(old, resolve=False)
        return f"{key} is a list ({shown}): set the whole list ({key}=[...]) or one element ({key}.0=...)"
    args = [str(k) for k in old.keys() if not str(k).startswith("_")]
    arg = f"{key}.{args[0]}=..." if args else f"+{key}.NAME=..."
    if is_lazy(old):
        ref = target_ref(old)
        if is_ref(ref):
            kind, name = str(ref).split(":", 1)
            other = next((n for n in registry(kind).all_names() if n != name), name)
            give = f"give a registry name ({key}={other})"
        else:
            give = f"give a new target as kind:name or a dotted path ({key}=pkg.module.Class)"
        return f"{key} is a component ({ref}): {give} or set its arguments ({arg})"
    listed = ", ".join(args[:4]) + (", ..." if len(args) > 4 else "")
    return f"{key} is a group of keys ({listed}): set one of them ({arg}) or give a whole group ({key}={{...}})"


def check_value(parent: Any, leaf: str, old: Any, new: Any, key: str, text: str) -> Any:
    """``new`` converted to the type of slot ``leaf`` of ``parent``, or one ConfigError naming ``key``."""
    if new is None or is_interpolation(new):
        return new
    hint = annotation(parent, leaf)  # one signature lookup per override
    if isinstance(old, (DictConfig, ListConfig)) and not isinstance(new, _CONTAINERS):
        if is_lazy(old) or not is_any(hint):  # Any: e.g. init_from={...} -> init_from=previous
            raise ConfigError(f"override {text!r}: {_not_a_value(old, key)}")
        return new
    if isinstance(old, (DictConfig, ListConfig)) or is_any(hint):
        return new
    expected = simple_type(hint) or (type(old) if isinstance(old, _SIMPLE) else None)
    return new if expected is None else _coerce(expected, old, new, key, text)


__all__ = ["annotation", "check_value", "is_any", "is_interpolation", "simple_type"]
