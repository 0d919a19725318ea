"""Requests the cluster cannot meet are refused with exit status 2, naming the key and the
fix, before anything is queued."""
from __future__ import annotations

import pytest

from tests.slurm.slurm_helpers import SMALL_JOB, TINY

pytestmark = pytest.mark.slurm


@pytest.mark.parametrize("flags, message", [
    (["--gpus-per-node", "4"], "the nodes of partition 'debug' have at most 2 GPU(s) (sinfo GRES: gpu:2)"),
    (["--partition", "debg"], "no such partition 'debg' (did you mean 'debug'?)"),
    (["--partition", "debug,debg"], "no such partition 'debg' (did you mean 'debug'?)"),
    (["--nodes", "2"], "partition 'debug' has 1 node(s)"),
])
def test_impossible_requests_fail_before_submission(tmp_path, launch, flags, message):
    code, out = launch("recipes/quickstart.py", *TINY, f"train.output_root={tmp_path}", "--cluster", "slurm",
                       *SMALL_JOB, *flags)
    assert code == 2 and message in out
    assert not (tmp_path / "quickstart").exists()  # no run directory, no job


def test_sbatch_refusal_is_a_user_error(tmp_path, launch):
    code, out = launch("recipes/quickstart.py", *TINY, f"train.output_root={tmp_path}", "--cluster", "slurm",
                       *SMALL_JOB, "--constraint", "nosuchfeature")
    assert code == 2 and "sbatch refused job [1] quickstart.pretrain" in out and "Invalid feature" in out
    assert not list(tmp_path.glob("quickstart/*/slurm/jobs.json"))  # nothing recorded: nothing was queued
