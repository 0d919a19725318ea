"""Submitting from inside a Slurm job (submitit #1782): the parent job holds 2 GPUs; without
hiding its SLURM_* variables the child's srun asks for GRES the child job does not have
("Invalid generic resource (gres) specification") and the child fails."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import submitit

from tests.slurm.slurm_helpers import SMALL_JOB, TINY, recorded_jobs, sacct

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]


def test_submitting_from_a_gpu_job_does_not_leak_its_environment(tmp_path):
    parent = submitit.SlurmExecutor(folder=tmp_path / "parent")
    parent.update_parameters(gpus_per_node=2, ntasks_per_node=1, cpus_per_task=1, time=15)
    command = [sys.executable, "tools/launch.py", "recipes/quickstart.py", *TINY, f"train.output_root={tmp_path}",
               "train.run_name=child", "--cluster", "slurm", *SMALL_JOB, "--stages", "pretrain", "--wait"]
    job = parent.submit(submitit.helpers.CommandFunction(command, cwd=REPO))
    output = job.result()  # raises FailedJobError (with the child's status) if the command failed
    (child,) = recorded_jobs(tmp_path / "quickstart" / "child")
    assert sacct(child["job_id"])[-1]["State"] == "COMPLETED", output
    log = (tmp_path / "quickstart" / "child" / "slurm" / "logs" / f"{child['job_id']}_0_log.out").read_text()
    assert "CUDA_VISIBLE_DEVICES= " in log  # the child sees no GPU of its parent
