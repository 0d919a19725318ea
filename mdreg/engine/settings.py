"""The run-wide ``train`` section of a recipe as a typed schema: :class:`TrainSettings`.

Recipes start from ``recipes/common/train.py``. The section is checked after overrides by
omegaconf's structured-config machinery (types: ``train.seed=abc`` fails naming the key)
and then by :meth:`TrainSettings.__post_init__` (ranges), so a bad value is one clear error
at ``--dry-run``, not a crash deep inside the trainer. Extra keys (added with
``+train.key=...``) are allowed and ignored here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mdreg.config.schema import hint as _hint
from mdreg.errors import ConfigError

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
        checks = {
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
        }
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            raise ConfigError("; ".join(_invalid(key, getattr(self, key)) for key in bad))

    @classmethod
    def from_config(cls, train: DictConfig) -> "TrainSettings":
        """Check ``train`` (types, then ranges) and return it typed; one ConfigError names every bad key."""
        known = {f.name for f in fields(cls)}
        given = {k: _plain(train[k]) for k in train.keys() if k in known}
        problems = []
        schema = OmegaConf.structured(cls)
        for key, value in given.items():
            try:
                OmegaConf.merge(schema, {key: value})
            except OmegaConfBaseException:
                problems.append(_invalid(key, value))
        if problems:
            raise ConfigError("; ".join(problems))
        return OmegaConf.to_object(OmegaConf.merge(schema, given))


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _invalid(key: str, value: Any) -> str:
    hint = next(f.metadata["hint"] for f in fields(TrainSettings) if f.name == key)
    return f"train.{key}={_plain(value)!r} is invalid: expected {hint}"
