"""Where a result came from: code version, software, hardware, hosts, Slurm job and time.

:func:`collect` returns one plain dict (JSON/YAML-ready) that mdreg writes into a run's
``meta.yaml`` at creation, into the ``start`` and ``end`` events of every stage's
``metrics.jsonl`` (each launch or resume adds its own ``start``) and into every evaluation
record of ``tools/evaluate.py``:

* ``git``: the commit of the checkout mdreg runs from, ``dirty`` (uncommitted changes or
  untracked files), the sha256 of ``git diff HEAD`` (identical diffs, identical hash) and
  the number of untracked files; outside a git checkout (an installed package, no ``git``)
  ``{"available": false, "reason": ...}`` instead of an error;
* ``mdreg``: the package version; ``python``, ``torch``, ``cuda``, ``cudnn`` versions;
* ``gpus``: count and model names visible to this process (``[]`` on a CPU machine);
  ``cpu_threads``: torch's intra-op threads (core-hours of CPU runs);
* ``host``: this process's hostname; ``hosts``: every rank's, in rank order (the trainer's
  start event gathers them, one ``all_gather_object``: :func:`mdreg.engine.monitor.with_ranks`);
* ``slurm``: job id, array job id and index, restart count, node list (only what is set);
* ``time``: ISO 8601 with the UTC offset.

The git state is read once per process (three ``git`` calls) and reused: the code a process
runs is the code it loaded.

Which process made a file (the run lock's holder, a lost rank) is told by its pid together with
:func:`process_start` and :func:`boot_id`: a pid alone is reused.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import socket
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout (or site-packages) holding mdreg/
SLURM_VARS = {"job_id": "SLURM_JOB_ID", "array_job_id": "SLURM_ARRAY_JOB_ID", "array_task_id": "SLURM_ARRAY_TASK_ID",
              "restart_count": "SLURM_RESTART_COUNT", "nodelist": "SLURM_JOB_NODELIST", "nodes": "SLURM_NNODES"}


def _git(root: Path, *args: str) -> bytes:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=30)
    if out.returncode != 0:
        lines = out.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"git {args[0]} failed")
    return out.stdout


def git_state(root: str | Path = ROOT) -> dict[str, Any]:
    """The git state of the checkout at ``root`` (uncached; see the module docstring)."""
    root = Path(root)
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
        if top.resolve() != root.resolve():  # mdreg installed inside some other repository
            return {"available": False, "reason": f"{root} is not a git checkout of mdreg (it lies inside {top})"}
        commit = _git(root, "rev-parse", "HEAD").decode().strip()
        status = _git(root, "status", "--porcelain", "--untracked-files=normal").decode()
        diff = _git(root, "diff", "HEAD", "--binary")
    except FileNotFoundError:
        return {"available": False, "reason": "git is not installed"}
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"not a git checkout ({exc}); mdreg runs from {root}"}
    untracked = sum(1 for line in status.splitlines() if line.startswith("??"))
    return {"commit": commit, "dirty": bool(status.strip()), "diff_sha256": hashlib.sha256(diff).hexdigest(),
            "diff_bytes": len(diff), "untracked_files": untracked}


@lru_cache(maxsize=None)
def _cached_git(root: str) -> dict[str, Any]:
    return git_state(root)


def mdreg_version() -> str:
    """``mdreg.__version__`` read from the source (importing the package would import everything)."""
    text = (Path(__file__).parent / "__init__.py").read_text()
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, flags=re.M)
    return found.group(1) if found else "unknown"


def _gpus() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"count": 0, "models": []}
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"count": len(names), "models": names}


def collect() -> dict[str, Any]:
    """This process's provenance (see the module docstring)."""
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    slurm = {key: os.environ[var] for key, var in SLURM_VARS.items() if os.environ.get(var)}
    return {"git": dict(_cached_git(str(ROOT))), "mdreg": mdreg_version(), "python": platform.python_version(),
            "torch": str(torch.__version__), "cuda": torch.version.cuda, "cudnn": cudnn, "gpus": _gpus(),
            "cpu_threads": torch.get_num_threads(), "host": socket.gethostname(), "slurm": slurm,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, which tells a pid's reuse apart;
    None if it is gone (no such pid on this host, or only the zombie of an ended process that
    its parent has not reaped yet)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])  # state, start time (fields 3 and 22)


def boot_id() -> str:
    """This machine's boot id (empty where /proc does not tell): a pid names a process only within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def flatten(info: Any, prefix: str = "") -> dict[str, Any]:
    """``{"git.commit": ..., "gpus.models": [...], ...}``: provenance as one level of keys."""
    if isinstance(info, dict):
        out: dict[str, Any] = {}
        for key, value in info.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: info}
