"""Where a process runs: torchrun, a task of a Slurm job step, or a single process.

The variables are the ones a real local Slurm sets (checked with ``sbatch --ntasks=2`` on the
tests' cluster): the batch shell has SLURM_PROCID=0 and SLURM_NTASKS=2 but no job step; each
``srun`` task also has SLURM_STEP_ID and SLURM_STEP_NUM_TASKS.
"""
from __future__ import annotations

import pytest

from mdreg.engine.distributed import detect

BATCH_SHELL = {"SLURM_JOB_ID": "233", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "2"}
STEP_TASK = {**BATCH_SHELL, "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0",
             "SLURM_STEP_NUM_TASKS": "2"}
TORCHRUN = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("env,expected", [
    ({}, "single"),
    (BATCH_SHELL, "single"),  # python tools/launch.py typed in an --ntasks=2 batch script: no ranks to wait for
    (STEP_TASK, "slurm"),
    ({**STEP_TASK, "SLURM_STEP_NUM_TASKS": "1"}, "single"),  # a one-task step
    ({**BATCH_SHELL, **TORCHRUN}, "torchrun"),  # torchrun inside an allocation
])
def test_detect(env, expected, monkeypatch):
    for key in [*BATCH_SHELL, *STEP_TASK, *TORCHRUN]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert detect() == expected
