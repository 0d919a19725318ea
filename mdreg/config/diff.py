"""Key-by-key differences between two config trees."""
from __future__ import annotations

from typing import Any

from mdreg.config.tree import to_plain

_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


def diff_trees(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """``(key, value_in_a, value_in_b)`` for every leaf key that differs; a missing key's
    value is the string ``"<absent>"``."""
    fa, fb = _flatten(to_plain(a)), _flatten(to_plain(b))
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if not _same(va, vb):
            rows.append((key, "<absent>" if va is _MISSING else va, "<absent>" if vb is _MISSING else vb))
    return rows


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same type; NaN equals NaN (a config holding NaN must match itself)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a:
        return b != b
    return a == b
