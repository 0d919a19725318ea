"""GPU options with fake GPUs advertised through GRES (LOCAL_SLURM_FAKE_GPUS=2):
``--gpus-per-node 2`` gives two tasks (one per GPU) that form one torch.distributed group
and are preempted together."""
from __future__ import annotations

import re

import pytest

from tests.slurm.slurm_helpers import SLOW, SMALL_JOB, STEPS, TINY, preempt_when, recorded_jobs, sacct, wait_ended

pytestmark = pytest.mark.slurm


def test_two_gpus_two_tasks_one_process_group_preempted_together(tmp_path, launch):
    code, _ = launch("recipes/quickstart.py", *TINY, *SLOW, f"train.output_root={tmp_path}", "train.run_name=g2",
                     "--cluster", "slurm", *SMALL_JOB, "--gpus-per-node", "2", "--stages", "pretrain")
    assert code == 0
    run = tmp_path / "quickstart" / "g2"
    (job,) = recorded_jobs(run)
    assert job["tasks"] == 2
    preempt_when(run / "pretrain", job["job_id"], step=2)
    assert wait_ended([job["job_id"]])[job["job_id"]]["State"] == "COMPLETED"
    assert [a["State"] for a in sacct(job["job_id"], duplicates=True)] == ["REQUEUED", "COMPLETED"]

    folder = run / "slurm" / "logs"  # a single run keeps submitit's folder in its own directory
    logs = [(folder / f"{job['job_id']}_{task}_log.out").read_text() for task in (0, 1)]
    masters = set()
    for task, log in enumerate(logs):
        lines = re.findall(r"rank (\d)/(\d) local_rank (\d) .* master (\S+) CUDA_VISIBLE_DEVICES=(\S*) restart (\d)",
                           log)
        assert [(r, w, lr, cvd, rs) for r, w, lr, _, cvd, rs in lines] == [  # one GPU per task
            (str(task), "2", str(task), str(task), "0"), (str(task), "2", str(task), str(task), "1")]
        masters |= {m for *_, m, _, _ in lines}
    assert len(masters) == 1  # one rendezvous address for both tasks
    stops = [re.findall(r"stopped at step (\d+) on request", log) for log in logs]
    assert stops[0] == stops[1] and len(stops[0]) == 1 and 2 <= int(stops[0][0]) < STEPS  # the same step on both
    assert "waits for rank 0's requeue" in logs[1]
    assert f"[pretrain] [########################] {STEPS}/{STEPS}" in logs[0]
