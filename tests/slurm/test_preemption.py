"""Preemption: USR2 mid-stage -> checkpoint at a step boundary -> requeue -> resume, and the
final weights equal an uninterrupted run's (same config, submitted at the same time)."""
from __future__ import annotations

import json

import pytest
import torch

from tests.slurm.slurm_helpers import SLOW, SMALL_JOB, STEPS, TINY, preempt_when, recorded_jobs, sacct, wait_ended

pytestmark = pytest.mark.slurm


def test_usr2_checkpoints_requeues_and_resumes_to_the_same_weights(tmp_path, launch):
    common = ["recipes/quickstart.py", *TINY, *SLOW, f"train.output_root={tmp_path}", "--cluster", "slurm",
              *SMALL_JOB]
    assert launch(*common, "train.run_name=preempted")[0] == 0
    assert launch(*common, "train.run_name=reference")[0] == 0
    run, ref = tmp_path / "quickstart" / "preempted", tmp_path / "quickstart" / "reference"
    pretrain_id, finetune_id = (j["job_id"] for j in recorded_jobs(run))

    preempt_when(run / "pretrain", pretrain_id, step=2)
    all_ids = [j["job_id"] for r in (run, ref) for j in recorded_jobs(r)]
    states = wait_ended(all_ids)
    assert all(s["State"] == "COMPLETED" for s in states.values()), states

    attempts = sacct(pretrain_id, duplicates=True)
    assert [a["State"] for a in attempts] == ["REQUEUED", "COMPLETED"], attempts
    events = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    resumed = [e["step"] for e in events if e.get("event") == "resume"]
    assert len(resumed) == 1 and 2 <= resumed[0] < STEPS, resumed  # stopped mid-stage, at a step boundary
    log = (run / "slurm" / f"pretrain.{pretrain_id}.out").read_text()
    assert f"stopped at step {resumed[0]} on request; checkpoint saved" in log
    assert "restart 1" in log  # SLURM_RESTART_COUNT in the requeued run
    assert sacct(finetune_id)[-1]["Start"] >= attempts[-1]["End"]  # afterok held across the requeue

    for stage in ("pretrain", "finetune"):
        name = f"step_{STEPS:08d}.pt"
        a = torch.load(run / stage / "checkpoints" / name, weights_only=True)
        b = torch.load(ref / stage / "checkpoints" / name, weights_only=True)
        for part in ("model", "ema"):
            assert a[part].keys() == b[part].keys()
            assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), (stage, part)
        assert all(torch.equal(x, y) for x, y in zip(a["optimizer"]["state"][0].values(),
                                                      b["optimizer"]["state"][0].values()))
    code, out = launch("--status", run)
    assert code == 0 and "REQUEUED" not in out.split("--")[0]


def test_a_signal_after_the_last_step_ends_the_job_completed_not_requeued(tmp_path, launch):
    """USR2 while the stage's final grid is drawn (after its last step and checkpoint): the work is
    done, so the job ends COMPLETED in one attempt. It used to be requeued, and the requeued run
    found nothing left to train (a CI failure of the time-limit test: 3 requeues, 2 resumes)."""
    slow_final_grid = ["stages.pretrain.sample.num=256", "stages.pretrain.sample.sampler.steps=600"]  # ~7 s
    code, _ = launch("recipes/quickstart.py", *TINY, "train.max_steps=3", f"train.output_root={tmp_path}",
                     *slow_final_grid, "train.run_name=late", "--cluster", "slurm", *SMALL_JOB, "--stages", "pretrain")
    assert code == 0
    run = tmp_path / "quickstart" / "late"
    (job,) = recorded_jobs(run)
    preempt_when(run / "pretrain", job["job_id"], step=3)
    wait_ended([job["job_id"]])

    attempts = [a["State"] for a in sacct(job["job_id"], duplicates=True)]
    err = (run / "slurm" / f"pretrain.{job['job_id']}.err").read_text()
    assert attempts == ["COMPLETED"], (attempts, err[-2000:])
    assert "caught SIGUSR2 after the last step: the stages are done, nothing to requeue" in err
    events = [json.loads(line).get("event") for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert "stopped" not in events and "resume" not in events and events[-1] == "end", events
