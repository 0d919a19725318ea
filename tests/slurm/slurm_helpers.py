"""Shared pieces of the Slurm tests: tiny overrides, and sacct read directly (not through mdreg)."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

# a model and data small enough for a few steps in seconds on one CPU
TINY = ["model.img_size=8", "model.embed_dim=32", "model.depth=3", "data.dataset.num_images=64",
        "data.dataset.resolution=8", "train.log_every=1", "train.device=cpu", "train.max_steps=2",
        "stages.pretrain.sample.num=4", "stages.finetune.sample.num=4",
        "stages.pretrain.sample.sampler.steps=2", "stages.finetune.sample.sampler.steps=2",
        "stages.pretrain.evaluate=null", "stages.finetune.evaluate=null"]
# one CPU per job: two jobs run at once on a 2-core CI machine; > 10 min so that a USR2
# counts as a preemption, not a timeout (submitit)
SMALL_JOB = ["--cpus-per-task", "1", "--mem-gb", "1", "--time", "15"]
JOB_DEADLINE_S = 240
STEPS = 12
# sampling a small grid after every pretrain step makes each step take a while, so that a
# signal surely lands mid-stage (sampling has its own generator: training is unchanged)
SLOW = [f"train.max_steps={STEPS}", "stages.pretrain.sample.every=1", "stages.pretrain.sample.num=16",
        "stages.pretrain.sample.sampler.steps=20"]


def recorded_jobs(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "slurm" / "jobs.json").read_text())["submissions"][-1]["jobs"]


def sacct(job_id: str, duplicates: bool = False) -> list[dict]:
    """sacct's rows for a job (or array element), read directly (not through mdreg)."""
    fields = ["JobID", "State", "Start", "End", "ExitCode"]
    cmd = ["sacct", "-X", "-P", "-n", "-o", ",".join(fields), "-j", job_id] + (["-D"] if duplicates else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]


def wait_ended(job_ids: list[str], deadline_s: float = JOB_DEADLINE_S) -> dict[str, dict]:
    """Poll sacct until every job has ended; fail with their states after ``deadline_s``."""
    end = time.time() + deadline_s
    while True:
        rows = {j: (sacct(j) or [{"State": "UNKNOWN"}])[-1] for j in job_ids}
        if all(r["State"].split()[0] not in ("PENDING", "RUNNING", "REQUEUED", "UNKNOWN", "COMPLETING")
               for r in rows.values()):
            return rows
        if time.time() > end:
            pytest.fail(f"jobs still not ended after {deadline_s} s: {rows}")
        time.sleep(1)


def steps_done(stage_dir: Path) -> int:
    """The last step in the stage's metrics.jsonl (0 before the first log line)."""
    path = stage_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return max([json.loads(line).get("step", 0) for line in lines] or [0])


def preempt_when(stage_dir: Path, job_id: str, step: int = 2) -> None:
    """Send what a preemption sends (USR2, scancel --signal) once the stage has done ``step`` steps."""
    deadline = time.time() + JOB_DEADLINE_S
    while steps_done(stage_dir) < step:
        assert time.time() < deadline, f"{stage_dir} did not reach step {step}"
        time.sleep(0.1)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)


def dry_run_scripts(out: str) -> list[str]:
    """The sbatch scripts a ``--cluster slurm --dry-run`` printed, in job order."""
    return [m.rstrip("\n") for m in re.findall(r"^#!/bin/bash\n.*?(?=^# \[\d+\] |^# dependency graph)", out,
                                                 flags=re.M | re.S)]


def submitted_script(folder: Path, job: dict, dry_run_script: str) -> tuple[str, str]:
    """(the script submitit wrote for a recorded ``job``, the dry run's script with the job's real
    dependency in place of ``<id of job N>``): the two must be equal."""
    written = (folder / f"{job['job_id'].split('_')[0]}_submission.sh").read_text().rstrip("\n")
    expected = dry_run_script
    if job["dependency"]:
        expected = re.sub(r"^#SBATCH --dependency=.*$", f"#SBATCH --dependency={job['dependency']}", expected,
                          flags=re.M)
    return written, expected
