"""One run directory, one writer, with Slurm: a running job holds its run (a local launch
of the same run is refused, naming the job), a killed job's lock is taken over, and a
submission is refused while a local launch trains the run."""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from tests.launch.test_run_lock import start, wait_for
from tests.slurm.slurm_helpers import (JOB_DEADLINE_S, SLOW, SMALL_JOB, STEPS, TINY, recorded_jobs, steps_done,
                                      wait_ended)

pytestmark = pytest.mark.slurm


def _record(run) -> dict:
    text = (run / ".lock").read_text() if (run / ".lock").is_file() else ""
    return json.loads(text) if text.strip() else {}


def test_a_running_job_refuses_a_local_launch_and_its_stale_lock_is_taken_over(tmp_path, launch):
    # ~0.5 s a step (a sample grid each step): the job still trains when the local launch comes
    local = ["recipes/quickstart.py", *TINY, *SLOW, "stages.pretrain.sample.sampler.steps=60",
             f"train.output_root={tmp_path}", "train.run_name=held", "--stages", "pretrain"]
    assert launch(*local, "--cluster", "slurm", *SMALL_JOB)[0] == 0
    run = tmp_path / "quickstart" / "held"
    (job,) = recorded_jobs(run)
    jid = job["job_id"]
    deadline = time.time() + JOB_DEADLINE_S
    while steps_done(run / "pretrain") < 1:  # training: the job holds the lock
        assert time.time() < deadline, "the job did not start training"
        time.sleep(0.2)
    held = _record(run)
    assert held["job_id"] == jid and held["host"] == socket.gethostname()
    config = (run / "config.yaml").read_bytes()
    try:
        code, out = launch(*local)
        assert code == 2
        error = [line for line in out.splitlines() if line.startswith("error: ")]
        assert len(error) == 1 and f"is in use by Slurm job {jid} (pid {held['pid']} on host {held['host']})" in \
            error[0], out
        assert f"scancel {jid}" in error[0]
        assert (run / "config.yaml").read_bytes() == config
        print(error[0])
    finally:  # the job's training process is killed (as by the OOM killer): no chance to clean up
        os.kill(held["pid"], signal.SIGKILL)
    assert wait_ended([jid])[jid]["State"] == "FAILED"
    assert _record(run)["pid"] == held["pid"]  # the record stays behind

    code, out = launch(*local)  # the same run, locally: takes the dead job's lock over and finishes
    assert code == 0, out
    notes = [line for line in out.splitlines() if "taking over the lock" in line]
    assert len(notes) == 1 and f"of Slurm job {jid} (pid {held['pid']} on host {held['host']})" in notes[0], out
    print(notes[0])
    assert (run / "pretrain" / "checkpoints" / f"step_{STEPS:08d}.pt").is_file() and not _record(run)


def test_a_submission_is_refused_while_a_local_launch_trains_the_run(tmp_path, launch):
    # many steps: the local launch must still be training when the submission is checked (it is killed below)
    args = ["recipes/quickstart.py", *TINY, *SLOW, "train.max_steps=1000", f"train.output_root={tmp_path}",
            "train.run_name=local", "--stages", "pretrain"]
    run, log = tmp_path / "quickstart" / "local", tmp_path / "local.log"
    proc = start(args, log)
    try:
        wait_for(lambda: steps_done(run / "pretrain") >= 1, "training", proc, log)
        code, out = launch(*args, "--cluster", "slurm", *SMALL_JOB)
        assert code == 2 and f"is in use by pid {proc.pid} on host {socket.gethostname()}" in out, out
        assert not (run / "slurm").exists()  # nothing submitted, nothing recorded
    finally:
        proc.kill()
        proc.join(30)
