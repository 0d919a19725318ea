"""Build objects from a config tree.

A short, explicit replacement for hydra's/detectron2's instantiate (their behaviour changed
across releases and re-wrapping containers made them slow). Rules:

* a lazy node (``_target_``) is called with its other keys as keyword arguments, after its
  keys were checked against the target's signature; its children are built first;
* ``_partial_: true`` returns ``functools.partial`` (required arguments may be missing);
* ``{_ref_: path}`` returns the named object without calling it;
* other dicts and lists become plain ``dict``/``list`` with built children;
* every error names the full dotted key (``stages.pretrain.masker.ratio``); a constructor
  that raises is one error naming the key and the component (``stages.pretrain.masker:
  building masker:block failed: RuntimeError: ...``), its traceback chained for ``--verbose``.

What arguments a target accepts (:func:`parameters`, :func:`check_call`) is the basis of the
checks that name bad keys, here and in overrides.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable

from omegaconf import DictConfig, ListConfig

from mdreg.config.lazy import (
    META_KEYS,
    PARTIAL,
    REF,
    TARGET,
    import_object,
    is_lazy,
    is_object_ref,
    is_ref,
    resolve_target,
)
from mdreg.errors import ConfigError, UserError, did_you_mean
from mdreg.registry import lookup, ref_of


def _join(key: str, child: Any) -> str:
    return f"{key}.{child}" if key else str(child)


def _raw_target(cfg: Any) -> Any:
    if isinstance(cfg, DictConfig):
        return cfg._get_node(TARGET)._value()  # keep objects (unnameable callables) as they are
    return cfg[TARGET]


def instantiate(cfg: Any, key: str = "", **extra: Any) -> Any:
    """Build ``cfg``. ``extra`` keyword arguments are added to a top-level lazy call
    (e.g. ``instantiate(cfg.optimizer, params=model.parameters())``)."""
    if is_lazy(cfg):
        target = resolve_target(_raw_target(cfg), key)
        partial = bool(cfg.get(PARTIAL, False))
        names = [k for k in cfg.keys() if k not in META_KEYS]
        label = describe(target)
        check_call(target, [*names, *extra], key, label, partial=partial)
        kwargs = {name: instantiate(_child(cfg, name, key), _join(key, name)) for name in names}
        kwargs.update(extra)
        if partial:
            return functools.partial(target, **kwargs)
        try:
            return target(**kwargs)
        except UserError as exc:
            msg = str(exc)
            raise type(exc)(msg if msg.startswith(key) else f"{key or '<root>'}: {msg}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key or '<root>'}: building {label} failed: {exc}") from exc
        except Exception as exc:  # a component's own failure (RuntimeError, AssertionError, KeyError, ...): one
            # error naming the key and the component; the traceback stays chained for --verbose
            raise ComponentFailed(f"{key or '<root>'}: building {label} failed: {type(exc).__name__}: "
                                  f"{_text(exc)}") from exc
    if extra:
        raise ConfigError(f"{key or '<root>'}: extra arguments {sorted(extra)} given for a node without _target_")
    if is_object_ref(cfg):  # a component passed as a value: a registry name or an import path
        ref = cfg[REF]
        return resolve_reference(ref, _join(key, REF)) if is_ref(ref) else import_object(ref, _join(key, REF))
    if isinstance(cfg, (DictConfig, dict)):
        return {name: instantiate(_child(cfg, name, key), _join(key, name)) for name in cfg.keys()}
    if isinstance(cfg, (ListConfig, list, tuple)):
        return [instantiate(item, _join(key, i)) for i, item in enumerate(cfg)]
    return cfg


class ComponentFailed(ConfigError):
    """A component's constructor raised something other than a UserError (a bug or an
    environment problem in it, not necessarily a bad value): the message names the config key,
    the component and the exception; ``--verbose`` shows its traceback (``__cause__``)."""


def _text(exc: BaseException) -> str:
    """An exception's message on one line (KeyError's repr quotes dropped; ``(no message)`` when empty)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    return " ".join(text.split()) or "(no message)"


def _child(cfg: Any, name: Any, key: str) -> Any:
    """cfg[name], resolving interpolations, with the full key in the error if that fails."""
    try:
        return cfg[name]
    except Exception as exc:  # omegaconf interpolation errors
        reason = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ConfigError(f"{_join(key, name)}: cannot resolve it: {reason}") from None


def resolve_reference(ref: str, key: str) -> Any:
    """The registered object ``ref`` ('kind:name') names, for a ``_ref_`` value."""
    try:
        return lookup(ref)
    except (ConfigError, KeyError) as exc:
        raise ConfigError(f"{key}: {exc}") from None


def parameters(target: Callable) -> tuple[list[str], list[str], bool]:
    """(all keyword-capable names, required names, accepts **kwargs) of ``target``."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return [], [], True  # builtins without signatures: accept anything
    names, required, var_kw = [], [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    return names, required, var_kw


def accepts(target: Callable, name: str) -> bool:
    names, _, var_kw = parameters(target)
    return var_kw or name in names


def check_call(target: Callable, given: Iterable[str], key: str, label: str, partial: bool = False) -> None:
    """Raise one :class:`ConfigError` naming ``key`` if ``given`` keyword names do not fit
    ``target``'s signature (unknown names; missing required ones unless ``partial``)."""
    names, required, var_kw = parameters(target)
    given = list(given)
    where = key or "<root>"
    problems = []
    if not var_kw:
        for name in given:
            if name not in names:
                problems.append(f"{where}.{name}: {label} has no argument {name!r}{did_you_mean(name, names)}")
    if not partial:
        missing = [n for n in required if n not in given]
        if missing:
            problems.append(f"{where}: {label} needs {', '.join(repr(m) for m in missing)} "
                            f"(add {', '.join(f'{where}.{m}=...' for m in missing)})")
    if problems:
        accepted = ", ".join(names) if names else "no keyword arguments"
        raise ConfigError("; ".join(problems) + f". {label} accepts: {accepted}")


def describe(target: Any) -> str:
    """A short name for error messages."""
    return ref_of(target) or getattr(target, "__qualname__", None) or repr(target)
