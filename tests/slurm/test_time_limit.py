"""A real Slurm time limit, no hand-sent signal: a job with ``--time 1`` whose stage needs
more than a minute gets USR2 from Slurm ``signal_delay_s`` before its limit, checkpoints at a
step boundary, requeues (each run gets a fresh minute) and ends with the weights of an
uninterrupted run.

Facts this relies on (measured on the local Slurm 22.05): slurmctld checks time limits every
30 s and sends the signal at the first check at or after ``limit - signal_delay_s - 30 s``, so
with a 1-minute limit and a 5 s delay it comes 25-55 s into the run and the kill (at the
limit, on a check) at least 30 s later. submitit counts every USR2 of a job with
``timeout_min <= 10`` as a timeout, so ``max_num_timeout`` must cover every requeue.
How much a run gets done before its signal varies (25-55 s, less the ~10 s start), so the
number of requeues does too: 2-3 on an idle 2-core machine, but a CI run once used up all 10
allowed and failed. ``max_num_timeout`` is therefore far above what is needed, and a failure
prints what each attempt did. Slow by nature: a time limit is at least one minute.
"""
from __future__ import annotations

import json
from pathlib import Path

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


LIMITED = ["launch.slurm.signal_delay_s=5", "--cluster", "slurm", "--cpus-per-task", "1", "--mem-gb", "1",
           "--time", "1", "--stages", "pretrain"]


def what_happened(run: Path, job_id: str) -> str:
    """For a failure message: each attempt's sacct row, the stage's events, the job log's last lines."""
    events = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    err = (run / "slurm" / f"pretrain.{job_id}.err").read_text().splitlines()
    return "\n".join([f"sacct: {sacct(job_id, duplicates=True)}",
                      "events: " + ", ".join(f"{e['event']}@{e['step']}" for e in events if "event" in e),
                      *[line for line in err if not line.startswith("[pretrain]")][-15:]])


def test_time_limit_checkpoints_requeues_and_ends_with_the_uninterrupted_weights(tmp_path, launch):
    common = ["recipes/quickstart.py", *TINY, f"train.max_steps={STEPS}", f"train.output_root={tmp_path}"]
    code, _ = launch(*common, *SLOWED, "train.run_name=limited", "launch.slurm.max_num_timeout=30", *LIMITED)
    assert code == 0
    run = tmp_path / "quickstart" / "limited"
    (job,) = recorded_jobs(run)
    assert launch(*common, "train.run_name=reference", "--stages", "pretrain")[0] == 0  # locally, meanwhile
    state = wait_ended([job["job_id"]], deadline_s=1500)[job["job_id"]]["State"]
    assert state == "COMPLETED", what_happened(run, job["job_id"])

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


def test_a_job_out_of_requeues_fails_saying_so_with_its_checkpoint_saved(tmp_path, launch):
    """max_num_timeout=0: the first signal stops the run at a step boundary and saves it, and the job
    then fails with mdreg's message (not submitit's bare "timed-out too many times")."""
    run = tmp_path / "quickstart" / "limited"
    code, _ = launch("recipes/quickstart.py", *TINY, f"train.max_steps={STEPS}", f"train.output_root={tmp_path}",
                     *SLOWED, "train.run_name=limited", "launch.slurm.max_num_timeout=0", *LIMITED)
    assert code == 0
    (job,) = recorded_jobs(run)
    state = wait_ended([job["job_id"]], deadline_s=300)[job["job_id"]]["State"]
    assert state == "FAILED", what_happened(run, job["job_id"])

    events = [json.loads(line) for line in (run / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    (stopped,) = [e for e in events if e.get("event") == "stopped"]
    assert 0 < stopped["step"] < STEPS and Path(stopped["checkpoint"]).is_file()
    log = (run / "slurm" / f"pretrain.{job['job_id']}.err").read_text()
    assert "the checkpoint is saved, but submitit did not requeue the job" in log
    assert "launch.slurm.max_num_timeout" in log and "Launch the same command again" in log
