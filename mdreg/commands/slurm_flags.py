"""The Slurm resource flags of ``tools/launch.py`` and ``tools/evaluate.py`` (``--nodes 4``,
``--time 2:00:00``): each overrides one ``launch.slurm`` key (:mod:`mdreg.launch.slurm.settings`).
Only the flags' table lives here: parsing them imports nothing Slurm-only."""
from __future__ import annotations

import argparse
import math
import re
from typing import Any

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


FLAG_NAMES: dict[str, str] = {key: flag for flag, (key, _, _) in FLAGS.items()}  # launch.slurm key -> its flag
