"""What we ask the Slurm cluster before submitting, so that a bad request is one clear
error (exit status 2) and nothing half-submitted.

* ``sbatch``/``srun`` must be on PATH (submitit needs both);
* the partition must exist (``sinfo``), with enough nodes and, when GPUs are asked for,
  GPUs in its GRES (``sinfo -o %G``): on a cluster without GPUs sbatch would only say
  "Invalid generic resource (gres) specification".

Submitting from inside a Slurm job (a sweep launched from an interactive allocation, a
job that submits its evaluation) must not hand the parent's ``SLURM_*``/``SRUN_*``
variables to the child: srun in the child reads e.g. ``SLURM_GPUS_PER_NODE`` and asks for
the parent's GPUs (submitit #1782). :func:`outside_job_env` hides them. It keeps
``SLURM_CONF`` (which ``submitit.helpers.clean_env`` drops, submitit #1814, although the
client tools need it to find the cluster), ``SUBMITIT_PREEMPT_SIGNAL`` and ``SBATCH_*``
(the user's own settings).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from typing import Iterator

from mdreg.errors import UserError, did_you_mean
from mdreg.launch.slurm.settings import SlurmSettings

_JOB_PREFIXES = ("SLURM_", "SLURMD_", "SRUN_", "SUBMITIT_")
_KEEP = ("SLURM_CONF", "SUBMITIT_PREEMPT_SIGNAL")  # where the cluster is; which signal jobs checkpoint on
_DISTRIBUTED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@contextlib.contextmanager
def outside_job_env() -> Iterator[dict[str, str]]:
    """Hide the enclosing job's Slurm/submitit/torch.distributed variables; yield them."""
    hidden = {k: os.environ.pop(k) for k in list(os.environ)
              if (k.startswith(_JOB_PREFIXES) and k not in _KEEP) or k in _DISTRIBUTED}
    try:
        yield hidden
    finally:
        os.environ.update(hidden)


def require_slurm_client() -> None:
    missing = [tool for tool in ("sbatch", "srun", "sinfo", "sacct") if shutil.which(tool) is None]
    if missing:
        raise UserError(f"--cluster slurm needs the Slurm client tools, but {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not on PATH. Run this on a Slurm login node, "
                        f"or start a local test cluster: bash tests/slurm/start-local-slurm.sh. "
                        f"--dry-run shows the sbatch scripts without a cluster")


def _sinfo(*fields: str) -> list[list[str]]:
    cmd = ["sinfo", "-h", "-o", "|".join(fields)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise UserError("sinfo did not answer in 60 s: is slurmctld reachable?") from None
    if out.returncode != 0:
        raise UserError(f"sinfo failed ({out.stderr.strip() or out.returncode}): is the cluster reachable?")
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]


def gpus_in_gres(gres: str) -> int:
    """GPUs per node in a GRES string: ``gpu:2``, ``gpu:a100:8(S:0-1)``, ``(null)`` -> 2, 8, 0."""
    best = 0
    for item in gres.split(","):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            best = max(best, int(m.group(1)))
    return best


def partitions_from_sinfo(rows: list[list[str]]) -> tuple[dict[str, dict], str | None]:
    """``sinfo -h -o %P|%D|%G`` rows -> ({partition: nodes, max GPUs per node, GRES}, default)."""
    partitions: dict[str, dict] = {}
    default = None
    for name, nodes, gres in rows:
        if name.endswith("*"):
            name = default = name[:-1]
        entry = partitions.setdefault(name, {"nodes": 0, "gpus": 0, "gres": set()})
        entry["nodes"] += int(nodes)
        entry["gpus"] = max(entry["gpus"], gpus_in_gres(gres))
        entry["gres"].add(gres)
    return partitions, default


def check_resources(res: SlurmSettings, partitions: dict[str, dict], default: str | None) -> str:
    """Raise a UserError if ``res`` cannot run in the cluster; return the partition's name.
    A list (``a100,h100``: Slurm starts the job in whichever can run it first) needs every name
    to exist and one of them to fit."""
    if not partitions:
        raise UserError("sinfo lists no partitions: the cluster has no usable nodes")
    name = res.partition or default
    if name is None:
        raise UserError(f"the cluster has no default partition; choose one with --partition "
                        f"(or launch.slurm.partition): {', '.join(sorted(partitions))}")
    names = [n.strip() for n in name.split(",") if n.strip()]
    for one in names:
        if one not in partitions:
            raise UserError(f"launch.slurm.partition={name!r}: no such partition {one!r}"
                            f"{did_you_mean(one, partitions)}; sinfo lists {', '.join(sorted(partitions))} "
                            f"(set --partition or launch.slurm.partition)")
    problems = [_misfit(res, one, partitions[one]) for one in names]
    if all(problems):
        raise UserError(problems[0] if len(names) == 1 else
                        f"no partition of {name!r} can run this job: " + "; ".join(problems))
    return name


def _misfit(res: SlurmSettings, name: str, part: dict) -> str | None:
    """Why ``res`` does not fit partition ``name`` (None if it does)."""
    gres = ", ".join(sorted(part["gres"]))
    if res.nodes > part["nodes"]:
        return (f"launch.slurm.nodes={res.nodes} but partition {name!r} has {part['nodes']} node(s); "
                f"use --nodes {part['nodes']} or fewer")
    if res.gpus_per_node and part["gpus"] == 0:
        return (f"launch.slurm.gpus_per_node={res.gpus_per_node} but partition {name!r} has no GPUs "
                f"(sinfo GRES: {gres}); use --gpus-per-node 0 to run on CPUs, or a GPU partition with --partition")
    if res.gpus_per_node > part["gpus"]:
        return (f"launch.slurm.gpus_per_node={res.gpus_per_node} but the nodes of partition {name!r} have "
                f"at most {part['gpus']} GPU(s) (sinfo GRES: {gres}); use --gpus-per-node {part['gpus']} "
                f"and more --nodes")
    return None


def check_cluster(res: SlurmSettings) -> str:
    """Check ``res`` against ``sinfo``; return the partition jobs will run in."""
    return check_resources(res, *partitions_from_sinfo(_sinfo("%P", "%D", "%G")))
