"""The ``launch`` section of a recipe: its keys, their checks, the flags that override
them, and the sbatch parameters (submitit's ``SlurmExecutor`` names) they become.

Precedence: the recipe's ``launch`` section (see ``recipes/common/launch.py``) <
``launch.slurm.KEY=VALUE`` overrides < flags (``--nodes 4``). Keys a recipe leaves out
take :data:`DEFAULTS`. Every bad value is reported at once, naming the key (or flag) and
what it expects. One task per GPU: ``ntasks_per_node = max(1, gpus_per_node)``.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mdreg.errors import ConfigError, did_you_mean

CLUSTERS = ("local", "slurm")

# What a recipe without a launch section gets (recipes/common/launch.py spells them out).
DEFAULTS: dict[str, Any] = dict(partition=None, nodes=1, gpus_per_node=0, cpus_per_task=1, mem_gb=None,
                                timeout_min=60, account=None, qos=None, constraint=None, exclude=None,
                                additional_parameters={}, setup=[], array_parallelism=64, signal_delay_s=120,
                                max_num_timeout=3)

_POSITIVE, _NON_NEGATIVE = (lambda v: v >= 1), (lambda v: v >= 0)
_NAME = (lambda v: bool(v.strip()), "a non-empty string or null")
# key: (allowed types, may be null, check, hint)
_SPEC: dict[str, tuple[tuple[type, ...], bool, Any, str]] = {
    "partition": ((str,), True, *_NAME),
    "nodes": ((int,), False, _POSITIVE, "a positive integer"),
    "gpus_per_node": ((int,), False, _NON_NEGATIVE, "a non-negative integer (0: CPU only)"),
    "cpus_per_task": ((int,), False, _POSITIVE, "a positive integer"),
    "mem_gb": ((int, float), True, lambda v: v > 0, "a positive number of GB, or null for the partition default"),
    "timeout_min": ((int,), False, _POSITIVE, "a positive number of minutes"),
    "account": ((str,), True, *_NAME),
    "qos": ((str,), True, *_NAME),
    "constraint": ((str,), True, *_NAME),
    "exclude": ((str,), True, *_NAME),
    "additional_parameters": ((dict,), False, None, "a mapping of sbatch option -> value"),
    "setup": ((list,), False, lambda v: all(isinstance(x, str) for x in v), "a list of shell lines"),
    "array_parallelism": ((int,), False, _POSITIVE, "a positive integer"),
    "signal_delay_s": ((int,), False, _NON_NEGATIVE, "a non-negative number of seconds"),
    "max_num_timeout": ((int,), False, _NON_NEGATIVE, "a non-negative integer"),
}
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

# flag: (key, argparse type, help)
FLAGS: dict[str, tuple[str, Any, str]] = {
    "--partition": ("partition", str, "Slurm partition"),
    "--nodes": ("nodes", int, "number of nodes"),
    "--gpus-per-node": ("gpus_per_node", int, "GPUs per node (one task per GPU)"),
    "--cpus-per-task": ("cpus_per_task", int, "CPUs per task"),
    "--mem-gb": ("mem_gb", float, "memory per node in GB"),
    "--time": ("timeout_min", None, "time limit: minutes, H:MM:SS or D-HH:MM:SS"),
    "--account": ("account", str, "Slurm account"),
    "--qos": ("qos", str, "quality of service"),
    "--constraint": ("constraint", str, "node features, e.g. a100"),
    "--exclude": ("exclude", str, "nodes to avoid"),
    "--array-parallelism": ("array_parallelism", int, "sweep elements running at once"),
}


@dataclass(frozen=True)
class SlurmResources:
    """Validated ``launch.slurm`` values (see :data:`_SPEC`)."""

    partition: str | None
    nodes: int
    gpus_per_node: int
    cpus_per_task: int
    mem_gb: float | None
    timeout_min: int
    account: str | None
    qos: str | None
    constraint: str | None
    exclude: str | None
    additional_parameters: dict
    setup: list
    array_parallelism: int
    signal_delay_s: int
    max_num_timeout: int

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _SPEC}


def parse_time(text: str) -> int:
    """Slurm time formats -> whole minutes (rounded up): ``90``, ``1:30:00``, ``2-00:00:00``, ``1-12``."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time (minutes, H:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None and b is None:
        return a  # minutes
    if days is None:
        h, mnt, s = (a, b, c) if c is not None else (0, a, b)  # H:MM:SS or MM:SS
    else:
        h, mnt, s = a, b or 0, c or 0
    return (days or 0) * 1440 + h * 60 + mnt + math.ceil(s / 60)


def add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("slurm resources (override the recipe's launch.slurm section)")
    for flag, (key, kind, text) in FLAGS.items():
        group.add_argument(flag, dest=f"slurm_{key}", type=kind or parse_time, default=None, help=text,
                           metavar=key.split("_")[0].upper())


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags given on the command line, by key."""
    return {key: getattr(args, f"slurm_{key}") for key, _, _ in FLAGS.values()
            if getattr(args, f"slurm_{key}", None) is not None}


def _section(cfg: DictConfig) -> dict[str, Any]:
    launch = cfg.get("launch")
    if launch is None:
        return {}
    if not isinstance(launch, DictConfig):
        raise ConfigError(f"launch must be a mapping (cluster=..., slurm=dict(...)), got {launch!r}")
    return OmegaConf.to_container(launch, resolve=True)


def cluster_of(cfg: DictConfig) -> str:
    """``launch.cluster`` (``local`` when absent), checked."""
    section = _section(cfg)
    unknown = [k for k in section if k not in ("cluster", "slurm")]
    if unknown:
        raise ConfigError(f"launch.{unknown[0]} is not a launch setting{did_you_mean(unknown[0], ['cluster', 'slurm'])}"
                          f"; the launch section holds cluster and slurm")
    cluster = section.get("cluster", "local")
    if cluster not in CLUSTERS:
        raise ConfigError(f"launch.cluster={cluster!r} is invalid: expected one of {', '.join(CLUSTERS)}")
    return cluster


def slurm_resources(cfg: DictConfig, flags: dict[str, Any] | None = None) -> SlurmResources:
    """``launch.slurm`` merged over :data:`DEFAULTS` and under ``flags``; one ConfigError
    listing every bad value."""
    cluster_of(cfg)
    section = _section(cfg).get("slurm") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"launch.slurm must be a mapping of resources, got {section!r}")
    problems = [f"launch.slurm.{k} is not a Slurm setting{did_you_mean(k, _SPEC)}" for k in section if k not in _SPEC]
    flags = flags or {}
    values = {**DEFAULTS, **section, **flags}
    flag_of = {key: flag for flag, (key, _, _) in FLAGS.items()}
    for key, (types, nullable, check, hint) in _SPEC.items():
        value = values[key]
        if value is None:
            ok = nullable
        else:
            ok = isinstance(value, types) and not isinstance(value, bool)
            ok = ok and (check is None or bool(check(value)))
        if not ok:
            where = f"{flag_of[key]} {value}" if key in flags else f"launch.slurm.{key}={value!r}"
            problems.append(f"{where} is invalid: expected {hint}")
    for option in (values["additional_parameters"] if isinstance(values["additional_parameters"], dict) else {}):
        if str(option).replace("_", "-") in MANAGED:
            problems.append(f"launch.slurm.additional_parameters.{option} is set by mdreg (logs, arrays and "
                            f"dependencies rely on it); remove it")
        elif str(option).replace("_", "-") in HAS_A_SETTING:
            key = HAS_A_SETTING[str(option).replace("_", "-")]
            problems.append(f"launch.slurm.additional_parameters.{option} duplicates launch.slurm.{key}, which mdreg checks and "
                            f"writes itself; set launch.slurm.{key} (or its flag) instead")
    if not problems and values["signal_delay_s"] >= values["timeout_min"] * 60:
        problems.append(f"launch.slurm.signal_delay_s={values['signal_delay_s']} is not shorter than the time limit "
                        f"({values['timeout_min']} min): the checkpoint signal would come at once; lower it or "
                        f"raise --time")
    if problems:
        raise ConfigError("; ".join(problems))
    return SlurmResources(**values)


def _mem(mem_gb: float) -> str:
    return f"{int(mem_gb)}GB" if float(mem_gb).is_integer() else f"{math.ceil(mem_gb * 1024)}MB"


def sbatch_parameters(res: SlurmResources, job_name: str, dependency: str | None = None,
                      setup: list[str] = ()) -> dict[str, Any]:
    """Parameters for ``submitit.SlurmExecutor.update_parameters`` (and, identically, for
    the dry run's ``_make_sbatch_string``)."""
    params: dict[str, Any] = dict(job_name=job_name, nodes=res.nodes, ntasks_per_node=res.tasks_per_node,
                                  cpus_per_task=res.cpus_per_task, time=res.timeout_min,
                                  signal_delay_s=res.signal_delay_s, array_parallelism=res.array_parallelism,
                                  setup=[*setup, *res.setup])
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    if res.mem_gb is not None:
        params["mem"] = _mem(res.mem_gb)
    for key in ("partition", "account", "qos", "constraint", "exclude"):
        if getattr(res, key) is not None:
            params[key] = getattr(res, key)
    extra: dict[str, Any] = {"requeue": True}  # preempted / timed-out jobs go back to the queue
    if res.gpus_per_node:
        # one GPU per task: Slurm sets each task's CUDA_VISIBLE_DEVICES to its own allocated GPU
        # (correct on shared nodes, where the job's GPUs need not be 0..n-1)
        extra["gpu-bind"] = "per_task:1"
    if dependency:
        params["dependency"] = dependency
        extra["kill-on-invalid-dep"] = "yes"  # a failed stage cancels the stages after it
    params["additional_parameters"] = {**extra, **res.additional_parameters}
    return params
