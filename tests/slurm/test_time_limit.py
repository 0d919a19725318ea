"""A real Slurm time limit, no hand-sent signal: a job with ``--time 1`` whose stage needs
more than a minute gets USR2 from Slurm ``signal_delay_s`` before its limit, checkpoints at a
step boundary, requeues (each run gets a fresh minute) and ends with the weights of an
uninterrupted run.

Facts this relies on (measured on the local Slurm 22.05): slurmctld checks time limits every
30 s and sends the signal at the first check at or after ``limit - signal_delay_s - 30 s``, so
with a 1-minute limit and a 5 s delay it comes 25-55 s into the run and the kill (at the
limit, on a check) at least 30 s later. submitit counts every USR2 of a job with
``timeout_min <= 10`` as a timeout, so ``max_num_timeout`` must cover every requeue.
Slow by nature: a time limit is at least one minute.
"""
from __future__ import annotations

import json

import pytest
import torch

from tests.slurm.slurm_helpers import TINY, recorded_jobs, sacct, wait_ended

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
STEPS = 100
# A sample grid every step slows the run (sampling has its own generator: the weights do not depend
# on it) to more than it gets before its signal: at 200 sampler steps the job once finished inside
# its first minute on an idle machine; at 600 the test took 156 s (two or more attempts)
SLOWED = ["stages.pretrain.sample.every=1", "stages.pretrain.sample.num=16",
          "stages.pretrain.sample.sampler.steps=600"]


def test_time_limit_checkpoints_requeues_and_ends_with_the_uninterrupted_weights(tmp_path, launch):
    common = ["recipes/quickstart.py", *TINY, f"train.max_steps={STEPS}", f"train.output_root={tmp_path}"]
    code, _ = launch(*common, *SLOWED, "train.run_name=limited", "launch.slurm.signal_delay_s=5",
                     "launch.slurm.max_num_timeout=10", "--cluster", "slurm", "--cpus-per-task", "1", "--mem-gb", "1",
                     "--time", "1", "--stages", "pretrain")
    assert code == 0
    run = tmp_path / "quickstart" / "limited"
    (job,) = recorded_jobs(run)
    assert launch(*common, "train.run_name=reference", "--stages", "pretrain")[0] == 0  # locally, meanwhile
    assert wait_ended([job["job_id"]], deadline_s=900)[job["job_id"]]["State"] == "COMPLETED"

    attempts = [a["State"] for a in sacct(job["job_id"], duplicates=True)]
    assert attempts[-1] == "COMPLETED" and attempts[:-1] and set(attempts[:-1]) == {"REQUEUED"}, attempts
    log = (run / "slurm" / f"pretrain.{job['job_id']}.err").read_text()
    assert log.count("Caught signal SIGUSR2") == len(attempts) - 1 and "this job is timed-out" in log
    events = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    resumed = [e["step"] for e in events if e.get("event") == "resume"]
    stopped = [e["step"] for e in events if e.get("event") == "stopped"]
    assert resumed == stopped and len(resumed) == len(attempts) - 1 and all(0 < s < STEPS for s in resumed)
    print(f"sacct: {attempts}; stopped and resumed at steps {resumed}")

    name = f"step_{STEPS:08d}.pt"
    a = torch.load(run / "pretrain" / "checkpoints" / name, weights_only=True)
    b = torch.load(tmp_path / "quickstart" / "reference" / "pretrain" / "checkpoints" / name, weights_only=True)
    for part in ("model", "ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in b[part]), part
