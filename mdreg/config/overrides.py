"""Command-line overrides in Hydra's grammar (parsed by hydra-core's OverridesParser only).

    a.b=1          change an existing key (struct mode: unknown keys are errors)
    +a.c=2         add a new key          ++a.c=2   add or change
    ~a.d           delete a key
    a.e=1,2,3      a sweep (also range(...), choice(...)): kept for the launcher

Keys of a lazy node may also be set without ``+`` when the node's target accepts them as
arguments (``stages.pretrain.masker.block_size=4`` after swapping to the block masker).
Setting a lazy node to a string swaps its target and drops the arguments the new target
does not accept: ``stages.pretrain.masker=block`` (a name of the same registry kind),
``model=backbone:dit_xl_2`` or a dotted path. The dropped keys are reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from mdreg.config.lazy import TARGET, import_object, is_lazy, node, resolve_target, target_ref
from mdreg.config.signature import accepts, describe, parameters
from mdreg.config.tree import iter_keys
from mdreg.errors import ConfigError, closest
from mdreg.registry import is_ref, registry


@dataclass
class Override:
    """One parsed ``key=value`` (not a sweep)."""

    key: str
    value: Any
    kind: str  # "change" | "add" | "force_add" | "delete"
    text: str


@dataclass
class Sweep:
    """A swept key: one run per value (the launcher takes the cartesian product)."""

    key: str
    values: list[Any]
    text: str
    kind: str = "change"


@dataclass
class ParsedOverrides:
    overrides: list[Override] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)


_KINDS = {"CHANGE": "change", "ADD": "add", "FORCE_ADD": "force_add", "DEL": "delete"}


def parse_overrides(args: list[str] | tuple[str, ...]) -> ParsedOverrides:
    """Parse ``key=value`` strings with hydra's grammar; sweeps are separated out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = ParsedOverrides()
    for text in args:
        try:
            (ov,) = parser.parse_overrides([text])
        except HydraException as exc:
            msg = str(exc).splitlines()[0]
            raise ConfigError(f"override {text!r} is not valid override syntax ({msg}); expected key=value, "
                              f"+key=value, ~key or key=a,b,c") from None
        kind = _KINDS[ov.type.name]
        key = ov.get_key_element() if ov.package else ov.key_or_group
        if ov.is_sweep_override():
            if kind == "delete":
                raise ConfigError(f"override {text!r}: a deletion cannot be swept")
            values = list(ov.sweep_iterator())
            if not values:
                raise ConfigError(f"override {text!r}: the sweep has no values")
            parsed.sweeps.append(Sweep(key, values, text, kind))
        else:
            parsed.overrides.append(Override(key, None if kind == "delete" else ov.value(), kind, text))
    return parsed


def _plain(value: Any) -> Any:
    """Hydra returns its own list/dict types for [..]/{..}: make them plain."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def unknown_key_error(cfg: DictConfig, key: str, text: str) -> ConfigError:
    keys = list(iter_keys(cfg))
    near = closest(key, keys, n=3) or closest(key.split(".")[-1], keys, n=3)
    hint = f" Closest keys: {', '.join(near)}." if near else ""
    return ConfigError(f"override {text!r}: unknown config key {key!r}.{hint} "
                       f"To add a new key write +{key}=...")


def _container(cfg: DictConfig, parent: str, text: str, create: bool) -> Any:
    if not parent:
        return cfg
    current = cfg
    for part in parent.split("."):
        if isinstance(current, ListConfig):
            if not part.isdigit() or int(part) >= len(current):
                raise unknown_key_error(cfg, parent, text)
            current = current[int(part)]
            continue
        if not isinstance(current, DictConfig):
            raise ConfigError(f"override {text!r}: {parent!r} is a value, not a group of keys")
        if part not in current:
            if not create:
                raise unknown_key_error(cfg, parent, text)
            with open_dict(current):
                current[part] = {}
        current = current[part] if current._get_node(part) is not None else None
        if current is None:
            raise ConfigError(f"override {text!r}: {parent!r} is null; set it to a group first")
    return current


def _check_type(old: Any, new: Any, key: str, text: str) -> Any:
    """Keep the type of the value being replaced (ints stay ints, numbers stay numbers)."""
    if old is None or new is None or isinstance(old, (DictConfig, ListConfig)):
        return new
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
        expected = "true or false"
    elif isinstance(old, int):
        if isinstance(new, int) and not isinstance(new, bool):
            return new
        if isinstance(new, float) and new.is_integer() and isinstance(old, int):
            return int(new)
        expected = "an integer"
    elif isinstance(old, float):
        if isinstance(new, (int, float)) and not isinstance(new, bool):
            return float(new)
        expected = "a number"
    elif isinstance(old, str):
        if isinstance(new, (str, int, float)) and not isinstance(new, bool):
            return str(new)
        expected = "a string"
    else:
        return new
    raise ConfigError(f"override {text!r}: {key} expects {expected} (current value {old!r}), "
                      f"got {new!r} ({type(new).__name__})")


def swap_target(old: DictConfig, value: str, key: str, text: str, notes: list[str]) -> DictConfig:
    """A new lazy node calling ``value``, keeping the old kwargs it accepts."""
    old_ref = target_ref(old)
    if is_ref(value) or "." in value:
        new_ref = value
    elif old_ref and is_ref(old_ref):
        new_ref = f"{old_ref.split(':')[0]}:{value}"
    else:
        raise ConfigError(f"override {text!r}: {key} is built from {old_ref or 'an object'}; give the new target "
                          f"as kind:name or a dotted path")
    try:
        target = resolve_target(new_ref, key)
    except ConfigError as exc:
        raise ConfigError(f"override {text!r}: {exc}") from None
    kept, dropped = {TARGET: new_ref}, []
    for name in old.keys():
        if name == TARGET:
            continue
        if name.startswith("_") or accepts(target, name):
            kept[name] = old._get_node(name)
        else:
            dropped.append(name)
    if dropped:
        notes.append(f"{key}: swapped {old_ref} -> {new_ref}; dropped {', '.join(dropped)} "
                     f"({describe(target)} does not take them)")
    return node({k: (OmegaConf.to_container(v, resolve=False) if isinstance(v, (DictConfig, ListConfig))
                     else (v._value() if hasattr(v, "_value") else v)) for k, v in kept.items()})


def _lazy_accepts(parent: Any, leaf: str) -> bool:
    if not is_lazy(parent):
        return False
    ref = target_ref(parent)
    if ref is None:
        return False
    try:
        target = resolve_target(ref)
    except ConfigError:
        return False
    names, _, var_kw = parameters(target)
    return leaf in names  # **kwargs targets still need +key


def apply_override(cfg: DictConfig, ov: Override, notes: list[str]) -> None:
    parent_key, _, leaf = ov.key.rpartition(".")
    create_parents = ov.kind in ("add", "force_add")
    parent = _container(cfg, parent_key, ov.text, create=create_parents)
    value = _plain(ov.value)
    if isinstance(parent, ListConfig):
        if not leaf.isdigit() or int(leaf) >= len(parent):
            raise unknown_key_error(cfg, ov.key, ov.text)
        idx = int(leaf)
        if ov.kind == "delete":
            del parent[idx]
        else:
            parent[idx] = _check_type(parent[idx], value, ov.key, ov.text)
        return
    exists = leaf in parent
    if ov.kind == "delete":
        if not exists:
            raise unknown_key_error(cfg, ov.key, ov.text)
        with open_dict(parent):
            del parent[leaf]
        return
    if ov.kind == "add" and exists:
        raise ConfigError(f"override {ov.text!r}: {ov.key} already exists; change it with {ov.text.lstrip('+')}")
    if ov.kind == "change" and not exists and not _lazy_accepts(parent, leaf):
        raise unknown_key_error(cfg, ov.key, ov.text)
    old = parent._get_node(leaf) if exists else None
    old_value = None if old is None else (old if isinstance(old, (DictConfig, ListConfig)) else old._value())
    if leaf == TARGET and exists and isinstance(value, str):  # a._target_=x: same as a=x
        value = swap_target(parent, value, parent_key, ov.text, notes)
        _set(cfg, parent_key, value)
        return
    if is_lazy(old_value) and isinstance(value, str):
        value = swap_target(old_value, value, ov.key, ov.text, notes)
    elif ov.kind == "change" and not _takes_anything(parent, leaf):
        if old_value is None and is_lazy(parent):
            old_value = _typed_default(parent, leaf)
        value = _check_type(old_value, value, ov.key, ov.text)
    with open_dict(parent):
        parent[leaf] = value


def _annotation(parent: Any, leaf: str) -> Any:
    """How a lazy node's target annotates its parameter ``leaf`` (None if unknown)."""
    import inspect

    ref = target_ref(parent)
    try:
        param = inspect.signature(resolve_target(ref)).parameters.get(leaf) if ref else None
    except (ConfigError, TypeError, ValueError):
        return None
    return None if param is None or param.annotation is inspect.Parameter.empty else param.annotation


def _takes_anything(parent: Any, leaf: str) -> bool:
    """The target annotates ``leaf`` as ``Any`` (e.g. a stage's ``init_from``: a name or a dict)."""
    return is_lazy(parent) and _annotation(parent, leaf) in ("Any", "typing.Any", Any)


def _typed_default(parent: Any, leaf: str) -> Any:
    """A value of the type a lazy node's target annotates for ``leaf`` (None if unknown):
    lets ``_check_type`` catch ``max_steps=abc`` where the current value is null."""
    import typing

    hint = _annotation(parent, leaf)
    if hint is None:
        return None
    if isinstance(hint, str):  # from __future__ import annotations
        hint = {"int": int, "float": float, "bool": bool, "str": str, "int | None": int, "float | None": float,
                "bool | None": bool, "str | None": str}.get(hint.replace("Optional[", "").rstrip("]"), None)
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_args(hint) else [hint]
    if len(args) == 1 and args[0] in (int, float, bool, str):
        return args[0]()
    return None


def _set(cfg: DictConfig, key: str, value: Any) -> None:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    with open_dict(parent):
        parent[leaf] = value


def apply_overrides(cfg: DictConfig, overrides: list[Override] | list[str]) -> list[str]:
    """Apply overrides in order (mutating ``cfg``); return notes about dropped kwargs."""
    if overrides and isinstance(overrides[0], str):
        parsed = parse_overrides(overrides)  # type: ignore[arg-type]
        if parsed.sweeps:
            raise ConfigError(f"sweep {parsed.sweeps[0].text!r} given where one run is expected")
        overrides = parsed.overrides
    notes: list[str] = []
    for ov in overrides:
        apply_override(cfg, ov, notes)  # type: ignore[arg-type]
    OmegaConf.set_struct(cfg, True)
    return notes


__all__ = ["Override", "Sweep", "ParsedOverrides", "parse_overrides", "apply_overrides", "apply_override",
           "swap_target", "import_object"]
