"""The run-wide ``train`` section of a recipe as a typed schema: :class:`TrainSettings`.

Recipes start from ``recipes/common/train.py``. The section is checked after overrides by
:func:`mdreg.config.schema.load_section` (types: ``train.seed=abc`` fails naming the key)
and then by :meth:`TrainSettings.__post_init__` (ranges), so a bad value is one clear error
at ``--dry-run``, not a crash deep inside the trainer. Extra keys (added with
``+train.key=...``) are allowed and ignored here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from omegaconf import DictConfig

from mdreg.config.schema import hint as _hint
from mdreg.config.schema import load_section, require
from mdreg.config.tree import to_plain

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")


@dataclass
class TrainSettings:
    """Run-wide settings; each field's ``hint`` says what it accepts."""

    seed: int = field(default=0, metadata=_hint("a non-negative integer"))
    output_root: str = field(default="runs", metadata=_hint("a directory path"))
    run_name: Optional[str] = field(default=None, metadata=_hint("a folder name without '/'"))
    max_steps: Optional[int] = field(default=None, metadata=_hint("a positive integer or null"))
    device: str = field(default="auto", metadata=_hint("auto, cpu, cuda or cuda:N"))
    tf32: bool = field(default=True, metadata=_hint("true or false"))
    compile: Any = field(default=None, metadata=_hint(
        "true/false or a torch.compile backend name (inductor, aot_eager, eager)"))
    compile_mode: Optional[str] = field(default=None, metadata=_hint(
        f"null or a torch.compile mode ({', '.join(COMPILE_MODES)})"))
    find_unused_parameters: bool = field(default=False, metadata=_hint(
        "true or false (DDP: parameters some steps do not use)"))
    log_every: int = field(default=10, metadata=_hint("a positive integer"))
    ckpt_every: Optional[int] = field(default=1000, metadata=_hint(
        "a non-negative integer (0: only at the end of a stage)"))
    keep_last: int = field(default=2, metadata=_hint("a positive integer"))
    milestone_every: Optional[int] = field(default=None, metadata=_hint("a positive integer or null"))
    num_workers: int = field(default=0, metadata=_hint("a non-negative integer"))
    sdpa_backends: Optional[List[str]] = field(default=None, metadata=_hint(
        f"null or a list of {', '.join(SDPA_BACKENDS)}"))
    collective_timeout_s: int = field(default=600, metadata=_hint(
        "a positive number of seconds (how long a rank waits for the others before the run fails)"))

    def __post_init__(self) -> None:
        require(self, {
            "seed": self.seed >= 0,
            "output_root": bool(self.output_root),
            "run_name": self.run_name is None or ("/" not in self.run_name and self.run_name not in (".", "..")),
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "device": self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            "compile": self.compile is None or isinstance(self.compile, (bool, str)),
            "compile_mode": self.compile_mode is None or self.compile_mode in COMPILE_MODES,
            "log_every": self.log_every >= 1,
            "ckpt_every": self.ckpt_every is None or self.ckpt_every >= 0,
            "keep_last": self.keep_last >= 1,
            "milestone_every": self.milestone_every is None or self.milestone_every >= 1,
            "num_workers": self.num_workers >= 0,
            "sdpa_backends": self.sdpa_backends is None or (
                len(self.sdpa_backends) > 0 and set(self.sdpa_backends) <= set(SDPA_BACKENDS)),
            "collective_timeout_s": self.collective_timeout_s >= 1,
        })

    @classmethod
    def from_config(cls, train: DictConfig) -> "TrainSettings":
        """Check ``train`` (types, then ranges) and return it typed; one ConfigError names every bad key."""
        known = {f.name for f in fields(cls)}
        given = {k: to_plain(train[k]) for k in train.keys() if k in known}
        return load_section(cls, given, lambda key, value: f"train.{key}={value!r}")
