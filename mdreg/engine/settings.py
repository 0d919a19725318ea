"""The run-wide ``train`` section of a recipe: its keys, their types and their checks.

Recipes start from ``recipes/common/train.py``; this module validates the section after
overrides so that ``train.max_steps=abc`` is one clear error naming the key, not a crash
deep inside the trainer. Extra keys (added with ``+train.key=...``) are allowed.
"""
from __future__ import annotations

from typing import Any

from omegaconf import ListConfig

from mdreg.errors import ConfigError

# key: (allowed types, may be null, check, hint)
_SPEC: dict[str, tuple[tuple[type, ...], bool, Any, str]] = {
    "seed": ((int,), False, lambda v: v >= 0, "a non-negative integer"),
    "output_root": ((str,), False, bool, "a directory path"),
    "run_name": ((str,), True, lambda v: "/" not in v and v not in (".", ".."), "a folder name without '/'"),
    "max_steps": ((int,), True, lambda v: v >= 1, "a positive integer or null"),
    "device": ((str,), False, lambda v: v in ("auto", "cpu", "cuda") or v.startswith("cuda:"), "auto, cpu or cuda"),
    "tf32": ((bool,), False, None, "true or false"),
    "compile": ((bool, str), True, None, "true/false or a torch.compile backend name (inductor, aot_eager, eager)"),
    "compile_mode": ((str,), True, lambda v: v in ("default", "reduce-overhead", "max-autotune",
                                                   "max-autotune-no-cudagraphs"),
                     "null or a torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)"),
    "find_unused_parameters": ((bool,), False, None, "true or false (DDP: parameters some steps do not use)"),
    "log_every": ((int,), False, lambda v: v >= 1, "a positive integer"),
    "ckpt_every": ((int,), True, lambda v: v >= 0, "a non-negative integer (0: only at the end of a stage)"),
    "keep_last": ((int,), False, lambda v: v >= 1, "a positive integer"),
    "milestone_every": ((int,), True, lambda v: v >= 1, "a positive integer or null"),
    "num_workers": ((int,), False, lambda v: v >= 0, "a non-negative integer"),
    "sdpa_backends": ((list, tuple), True, lambda v: len(v) > 0 and set(v) <= {"flash", "efficient", "cudnn", "math"},
                      "null or a list of flash, efficient, cudnn, math"),
}


def validate_train(train: Any) -> None:
    """Raise one ConfigError listing every bad ``train.*`` value."""
    problems = []
    for key, (types, nullable, check, hint) in _SPEC.items():
        if key not in train:
            continue
        value = train[key]
        if isinstance(value, ListConfig):
            value = list(value)
        if value is None:
            ok = nullable
        else:
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            ok = ok and (check is None or bool(check(value)))
        if not ok:
            problems.append(f"train.{key}={value!r} is invalid: expected {hint}")
    if problems:
        raise ConfigError("; ".join(problems))
