"""A run whose one recorded job Slurm no longer knows (the controller forgets a job MinJobAge
after it ends; a wiped cluster forgets everything): ``--status`` still answers, and the
relaunch check does not stop at squeue's "Invalid job id specified"."""
from __future__ import annotations

import subprocess

import pytest

from mdreg.runs.jobs import JobRecord, append_submission
from mdreg.runs.queue import query

pytestmark = pytest.mark.slurm
NEVER_SUBMITTED = "987654"


def test_real_squeue_fails_for_one_unknown_id_and_query_reads_that_as_not_queued():
    alone = subprocess.run(["squeue", "-h", "-r", "-j", NEVER_SUBMITTED], capture_output=True, text=True)
    assert alone.returncode != 0 and "Invalid job id specified" in alone.stderr  # what the fix is for
    assert query([NEVER_SUBMITTED])[NEVER_SUBMITTED].state == "UNKNOWN"


def test_status_of_a_forgotten_job_is_a_failure_not_still_running(tmp_path, launch):
    run = tmp_path / "quickstart" / "old"
    append_submission(run, [JobRecord(["pretrain"], NEVER_SUBMITTED, str(tmp_path / "logs"), 1)], {})
    code, out = launch("--status", str(run))
    assert code == 1 and NEVER_SUBMITTED in out and "UNKNOWN" in out
