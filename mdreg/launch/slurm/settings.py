"""The Slurm resources of a recipe's ``launch.slurm`` section as a typed schema,
:class:`SlurmSettings` (``launch.cluster``, local or slurm, is read by ``tools/launch.py``).

Precedence: the recipe's ``launch`` section (see ``recipes/common/launch.py``) <
``launch.slurm.KEY=VALUE`` overrides < flags (``--nodes 4``, :mod:`mdreg.commands.slurm_flags`).
Keys a recipe leaves out take the dataclass's defaults. Types are checked by omegaconf's
structured configs, ranges by :meth:`SlurmSettings.__post_init__`
(:mod:`mdreg.config.schema`); every bad value is reported at once, naming the key (or flag)
and what it expects. One task per GPU: ``ntasks_per_node = max(1, gpus_per_node)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from mdreg.config.schema import hint, load_section, require
from mdreg.errors import ConfigError, did_you_mean

_NAME = "a non-empty string or null"

# sbatch options mdreg sets itself: overriding them would break logs, arrays or chains.
MANAGED = ("output", "error", "array", "dependency", "job-name", "open-mode", "signal", "ntasks-per-node")
# sbatch options that have a launch.slurm setting: mdreg checks those values (batch split,
# signal delay, partition fit), so they may not come in around it as extra parameters
HAS_A_SETTING = {"time": "timeout_min", "t": "timeout_min", "nodes": "nodes", "N": "nodes", "ntasks": "gpus_per_node",
                 "n": "gpus_per_node", "gres": "gpus_per_node", "gpus": "gpus_per_node",
                 "gpus-per-node": "gpus_per_node", "gpus-per-task": "gpus_per_node", "mem": "mem_gb",
                 "mem-per-cpu": "mem_gb", "mem-per-gpu": "mem_gb", "partition": "partition", "p": "partition",
                 "cpus-per-task": "cpus_per_task", "c": "cpus_per_task", "account": "account", "A": "account",
                 "qos": "qos", "constraint": "constraint", "C": "constraint", "exclude": "exclude",
                 "x": "exclude"}


@dataclass(frozen=True)
class SlurmSettings:
    """Validated ``launch.slurm`` values; each field's ``hint`` says what it accepts. The
    defaults are what a recipe without a launch section gets (recipes/common/launch.py spells
    out its own)."""

    partition: Optional[str] = field(default=None, metadata=hint(_NAME))
    nodes: int = field(default=1, metadata=hint("a positive integer"))
    gpus_per_node: int = field(default=0, metadata=hint("a non-negative integer (0: CPU only)"))
    cpus_per_task: int = field(default=1, metadata=hint("a positive integer"))
    mem_gb: Optional[float] = field(default=None, metadata=hint(
        "a positive number of GB, or null for the partition default"))
    timeout_min: int = field(default=60, metadata=hint("a positive number of minutes"))
    account: Optional[str] = field(default=None, metadata=hint(_NAME))
    qos: Optional[str] = field(default=None, metadata=hint(_NAME))
    constraint: Optional[str] = field(default=None, metadata=hint(_NAME))
    exclude: Optional[str] = field(default=None, metadata=hint(_NAME))
    additional_parameters: Dict[str, Any] = field(default_factory=dict, metadata=hint(
        "a mapping of sbatch option -> value"))
    setup: List[str] = field(default_factory=list, metadata=hint("a list of shell lines"))
    array_parallelism: int = field(default=64, metadata=hint("a positive integer"))
    signal_delay_s: int = field(default=120, metadata=hint("a non-negative number of seconds"))
    max_num_timeout: int = field(default=3, metadata=hint("a non-negative integer"))

    def __post_init__(self) -> None:
        names = {key: getattr(self, key) for key in ("partition", "account", "qos", "constraint", "exclude")}
        require(self, {
            **{key: value is None or bool(value.strip()) for key, value in names.items()},
            "nodes": self.nodes >= 1,
            "gpus_per_node": self.gpus_per_node >= 0,
            "cpus_per_task": self.cpus_per_task >= 1,
            "mem_gb": self.mem_gb is None or self.mem_gb > 0,
            "timeout_min": self.timeout_min >= 1,
            "array_parallelism": self.array_parallelism >= 1,
            "signal_delay_s": self.signal_delay_s >= 0,
            "max_num_timeout": self.max_num_timeout >= 0,
        }, messages=self._bypassed_settings(), across=self._signal_before_the_limit)

    def _bypassed_settings(self) -> list[str]:
        """``additional_parameters`` may not set what mdreg sets or checks itself."""
        problems = []
        for option in self.additional_parameters:
            sbatch = str(option).replace("_", "-")
            if sbatch in MANAGED:
                problems.append(f"launch.slurm.additional_parameters.{option} is set by mdreg (logs, arrays and "
                                f"dependencies rely on it); remove it")
            elif sbatch in HAS_A_SETTING:
                key = HAS_A_SETTING[sbatch]
                problems.append(f"launch.slurm.additional_parameters.{option} duplicates launch.slurm.{key}, which "
                                f"mdreg checks and writes itself; set launch.slurm.{key} (or its flag) instead")
        return problems

    def _signal_before_the_limit(self) -> list[str]:
        if self.signal_delay_s < self.timeout_min * 60:
            return []
        return [f"launch.slurm.signal_delay_s={self.signal_delay_s} is not shorter than the time limit "
                f"({self.timeout_min} min): the checkpoint signal would come at once; lower it or raise --time"]

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _section(cfg: DictConfig) -> dict[str, Any]:
    launch = cfg.get("launch")
    if launch is None:
        return {}
    if not isinstance(launch, DictConfig):
        raise ConfigError(f"launch must be a mapping (cluster=..., slurm=dict(...)), got {launch!r}")
    return OmegaConf.to_container(launch, resolve=True)


def slurm_settings(cfg: DictConfig, flags: dict[str, Any] | None = None,
                   flag_names: dict[str, str] | None = None) -> SlurmSettings:
    """``launch.slurm`` under ``flags`` (by key: ``{"nodes": 4}``; ``flag_names`` says how each
    was spelled on the command line, ``{"nodes": "--nodes"}``); one ConfigError listing every
    bad value."""
    section = _section(cfg).get("slurm") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"launch.slurm must be a mapping of resources, got {section!r}")
    keys = [f.name for f in fields(SlurmSettings)]
    unknown = [f"launch.slurm.{k} is not a Slurm setting{did_you_mean(k, keys)}" for k in section if k not in keys]
    flags, flag_names = flags or {}, flag_names or {}

    def name(key: str, value: Any) -> str:
        return f"{flag_names.get(key, '--' + key)} {value}" if key in flags else f"launch.slurm.{key}={value!r}"

    given = {k: v for k, v in {**section, **flags}.items() if k in keys}
    return load_section(SlurmSettings, given, name, problems=unknown)
