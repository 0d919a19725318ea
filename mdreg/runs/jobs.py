"""``RUN_DIR/slurm/jobs.json``: the Slurm jobs submitted for a run, so that ``--status``
works later, from any shell. Each submission is appended (a relaunch after a failure
keeps the history); status shows the latest. Each job's logs are also linked into
``RUN_DIR/slurm/`` as ``<stages>.<job id>.out|.err``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mdreg.io import atomic_write_text

if TYPE_CHECKING:  # submitit is imported where a recorded job is read, never on a local launch's path
    from submitit.core.utils import JobPaths

RECORD = Path("slurm") / "jobs.json"


@dataclass
class JobRecord:
    """One submitted job (or array element) of one run."""

    stages: list[str]
    job_id: str                 # "123" or "123_4" (array 123, element 4)
    folder: str                 # submitit's folder (logs, pickles)
    tasks: int
    dependency: str | None = None

    def paths(self, task: int = 0) -> JobPaths:
        from submitit.core.utils import JobPaths

        return JobPaths(self.folder, job_id=self.job_id, task_id=task)

    @property
    def label(self) -> str:
        return "+".join(self.stages)


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD


def append_submission(run_dir: Path, jobs: list[JobRecord], resources: dict) -> None:
    path = record_path(run_dir)
    data = json.loads(path.read_text()) if path.is_file() else {"submissions": []}
    data["submissions"].append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv),
                                "resources": resources, "jobs": [asdict(j) for j in jobs]})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    _link_logs(path.parent, jobs)


def add_to_latest_submission(run_dir: Path, jobs: list[JobRecord], resources: dict) -> None:
    """Add ``jobs`` to the run's latest Slurm submission (a new one if it has none), logs linked."""
    path = record_path(run_dir)
    if not path.is_file():
        append_submission(run_dir, jobs, resources)
        return
    data = json.loads(path.read_text())
    data["submissions"][-1]["jobs"] += [asdict(j) for j in jobs]
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    _link_logs(path.parent, jobs)


def _link_logs(folder: Path, jobs: list[JobRecord]) -> None:
    """``<label>.<job id>.out`` / ``.err`` in ``folder``, relative links to each job's submitit logs."""
    for job in jobs:
        for suffix, target in (("out", job.paths().stdout), ("err", job.paths().stderr)):
            link = folder / f"{job.label}.{job.job_id}.{suffix}"
            if not link.is_symlink():
                os.symlink(os.path.relpath(target, link.parent), link)


def latest_jobs(run_dir: Path) -> list[JobRecord]:
    """The jobs of the run's latest submission ([] if it was never submitted to Slurm)."""
    path = record_path(run_dir)
    if not path.is_file():
        return []
    submissions = json.loads(path.read_text())["submissions"]
    return [JobRecord(**j) for j in submissions[-1]["jobs"]] if submissions else []
