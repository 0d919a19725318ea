"""Command-line overrides in Hydra's grammar (parsed by hydra-core's OverridesParser only).

    a.b=1          change an existing key (struct mode: unknown keys are errors)
    +a.c=2         add a new key          ++a.c=2   add or change
    ~a.d           delete a key           ~a.d=3    delete it only if its value is 3
    a.l.0=1        set a list element (lists cannot grow by index: write a.l=[...])
    a.e=1,2,3      a sweep (also range(...), choice(...)): kept for the launcher

Values may hold non-ASCII characters unquoted (``train.output_root=/tmp/rés``), which Hydra's
lexer alone accepts only inside quotes.

Keys of a lazy node may also be set without ``+`` when the node's target accepts them as
arguments (``stages.pretrain.masker.block_size=4`` after swapping to the block masker).
Setting a lazy node to a string swaps its target and drops the arguments the new target
does not accept: ``stages.pretrain.masker=block`` (a name of the same registry kind),
``model=backbone:dit_xl_2`` or a dotted path. The dropped keys are reported.
Values are type-checked by :mod:`mdreg.config.override_types`.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from mdreg.config.instantiate import accepts, describe, parameters
from mdreg.config.lazy import (
    TARGET,
    import_object,
    is_lazy,
    node,
    resolve_target,
    target_ref,
)
from mdreg.config.override_types import check_value, is_interpolation
from mdreg.config.tree import iter_keys
from mdreg.errors import ConfigError, closest
from mdreg.registry import is_ref


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


def _python_call_hint(text: str) -> str:
    """A hint for a recipe's Python written as an override value: ``k=dict(a=1, b=x)``."""
    key, _, value = text.partition("=")
    call = re.fullmatch(r"\s*dict\((.*)\)\s*", value)
    if not call:
        return ""
    fields = ", ".join(f"{k.strip()}: {v.strip()}" for k, _, v in (p.partition("=") for p in call.group(1).split(",")))
    return f"; a dict is written {{key: value}} on the command line: '{key}={{{fields}}}'"


def parse_overrides(args: list[str] | tuple[str, ...]) -> ParsedOverrides:
    """Parse ``key=value`` strings with hydra's grammar; sweeps are separated out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = ParsedOverrides()
    for text in args:
        ascii_text, restore = _ascii_for_parser(text)
        try:
            (ov,) = parser.parse_overrides([ascii_text])
        except HydraException as exc:
            msg = str(exc).splitlines()[0]
            raise ConfigError(f"override {text!r} is not valid override syntax ({msg}); expected key=value, "
                              f"+key=value, ~key or key=a,b,c{_python_call_hint(text)}") from None
        kind = _KINDS[ov.type.name]
        key = ov.get_key_element() if ov.package else ov.key_or_group
        if ov.is_sweep_override():
            if kind == "delete":
                raise ConfigError(f"override {text!r}: a deletion cannot be swept")
            try:
                values = list(ov.sweep_iterator())
            except HydraException as exc:
                if ov.value_type is not None and ov.value_type.name == "INTERVAL_SWEEP":
                    raise ConfigError(f"override {text!r}: interval() sweeps are not supported (they need a "
                                      f"sampling sweeper); use range(...) or a comma list / choice(...)") from None
                raise ConfigError(f"override {text!r}: cannot expand the sweep ({exc})") from None
            if not values:
                raise ConfigError(f"override {text!r}: the sweep has no values")
            parsed.sweeps.append(Sweep(key, [restore(v) for v in values], text, kind))
        else:
            parsed.overrides.append(Override(key, restore(ov.value()), kind, text))
    return parsed


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _ascii_for_parser(text: str) -> tuple[str, Callable[[Any], Any]]:
    """``text`` with each run of non-ASCII characters in its value replaced by an ASCII
    placeholder, and the function that puts them back into a parsed value. Hydra's lexer takes
    non-ASCII letters only inside quotes, so ``train.output_root=/tmp/rés`` (or ``/tmp/数据``)
    would be "not valid override syntax"; the placeholder parses as part of the same unquoted
    string (or stays inside the same quotes), so the value, its type and any sweep or list
    around it are what the user wrote."""
    key, sep, value = text.partition("=")
    runs = list(dict.fromkeys(_NON_ASCII.findall(value))) if sep else []
    if not runs:
        return text, lambda parsed: parsed
    stem = "zzmdreg" + secrets.token_hex(4)
    while stem in text:
        stem = "zzmdreg" + secrets.token_hex(4)
    table = {f"{stem}x{i}x": run for i, run in enumerate(runs)}
    for holder, run in table.items():
        value = value.replace(run, holder)
    pattern = re.compile("|".join(map(re.escape, table)))

    def restore(parsed: Any) -> Any:
        if isinstance(parsed, str):
            return pattern.sub(lambda m: table[m.group(0)], parsed)
        if isinstance(parsed, dict):
            return {restore(k): restore(v) for k, v in parsed.items()}
        if isinstance(parsed, (list, tuple)):
            return [restore(v) for v in parsed]
        return parsed
    return key + sep + value, restore


def _plain(value: Any) -> Any:
    """Hydra returns its own list/dict types for [..]/{..}: make them plain."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def unknown_key_error(cfg: DictConfig, key: str, text: str, delete: bool = False) -> ConfigError:
    keys = list(iter_keys(cfg))
    near = closest(key, keys, n=3) or closest(key.split(".")[-1], keys, n=3)
    if delete:
        hint = f"; the closest keys are {', '.join(near)}" if near else ""
        return ConfigError(f"override {text!r}: nothing to delete: unknown config key {key!r}{hint}")
    hint = f" Closest keys: {', '.join(near)}." if near else ""
    return ConfigError(f"override {text!r}: unknown config key {key!r}.{hint} "
                       f"To add a new key write +{key}=...")


def _slot(parent: DictConfig | ListConfig, leaf: str) -> tuple[Any, bool]:
    """The key of ``leaf`` in ``parent`` (an int index in a list) and whether it exists."""
    if isinstance(parent, ListConfig):
        return (int(leaf), int(leaf) < len(parent)) if leaf.isdigit() else (leaf, False)
    return leaf, leaf in parent


def _container(cfg: DictConfig, parent: str, ov: Override) -> DictConfig | ListConfig:
    """The group or list ``parent`` names (missing groups are created for +/++), or one ConfigError."""
    current, walked = cfg, []
    for part in parent.split(".") if parent else []:
        walked.append(part)
        here = ".".join(walked)
        slot, exists = _slot(current, part)
        if not exists:
            if isinstance(current, ListConfig) or ov.kind not in ("add", "force_add"):
                raise unknown_key_error(cfg, here, ov.text, delete=ov.kind == "delete")
            with open_dict(current):
                current[part] = {}
        current = current[slot]
        if current is None:
            raise ConfigError(f"override {ov.text!r}: {here!r} is null; set it to a group first")
        if not isinstance(current, (DictConfig, ListConfig)):
            raise ConfigError(f"override {ov.text!r}: {here} is a value ({current!r}), not a group of keys")
    return current


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


def _put(parent: DictConfig | ListConfig, slot: Any, value: Any) -> None:
    with open_dict(parent):
        parent[slot] = value


def _check_delete(cfg: DictConfig, ov: Override, exists: bool, current: Any) -> None:
    """Hydra's rule: ``~key`` deletes; ``~key=value`` deletes only if the current value is ``value``."""
    if not exists:
        raise unknown_key_error(cfg, ov.key, ov.text, delete=True)
    wanted = _plain(ov.value)
    if isinstance(current, (DictConfig, ListConfig)):
        current = OmegaConf.to_container(current, resolve=False)
    if wanted is not None and current != wanted:
        raise ConfigError(f"override {ov.text!r}: {ov.key} was not deleted: its current value is {current!r}, "
                          f"not {wanted!r}; write ~{ov.key} to delete it whatever its value")


def apply_override(cfg: DictConfig, ov: Override, notes: list[str]) -> None:
    """Apply one override (mutating ``cfg``); target swaps that drop kwargs are noted in ``notes``."""
    parent_key, _, leaf = ov.key.rpartition(".")
    parent = _container(cfg, parent_key, ov)
    slot, exists = _slot(parent, leaf)
    old = parent._get_node(slot) if exists else None
    old_value = None if old is None else (old if isinstance(old, (DictConfig, ListConfig)) else old._value())
    if ov.kind == "delete":
        _check_delete(cfg, ov, exists, old_value)
        with open_dict(parent):
            del parent[slot]
        return
    if isinstance(parent, ListConfig) and not exists:
        raise ConfigError(f"override {ov.text!r}: {parent_key} is a list of {len(parent)} "
                          f"elements; lists cannot grow by index: set the whole list: {parent_key}=[...]")
    if ov.kind == "add" and exists:
        raise ConfigError(f"override {ov.text!r}: {ov.key} already exists; change it with {ov.text.lstrip('+')}")
    if ov.kind == "change" and not exists and not _lazy_accepts(parent, leaf):
        raise unknown_key_error(cfg, ov.key, ov.text)
    value = _plain(ov.value)
    if leaf == TARGET and exists and parent_key and isinstance(value, str):  # a._target_=x: same as a=x
        holder_key, _, name = parent_key.rpartition(".")
        holder = _container(cfg, holder_key, ov)
        _put(holder, _slot(holder, name)[0], swap_target(parent, value, parent_key, ov.text, notes))
        return
    if is_lazy(old_value) and isinstance(value, str) and not is_interpolation(value):
        value = swap_target(old_value, value, ov.key, ov.text, notes)
    else:
        value = check_value(parent, leaf, old_value, value, ov.key, ov.text)
    _put(parent, slot, value)


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
