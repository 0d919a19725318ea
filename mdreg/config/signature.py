"""What arguments a config target accepts: the basis of the checks that name bad keys."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

from mdreg.errors import ConfigError, did_you_mean


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
    from mdreg.registry import ref_of
    return ref_of(target) or getattr(target, "__qualname__", None) or repr(target)
