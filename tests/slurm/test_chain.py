"""A tiny two-stage quickstart submitted to Slurm: two jobs chained with afterok."""
from __future__ import annotations

import re
import subprocess

import pytest
import torch

from tests.slurm.slurm_helpers import (SMALL_JOB, TINY, dry_run_scripts, recorded_jobs, sacct,
                                      submitted_script, wait_ended)

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    """Submit with --wait (the module's tests share the one submission)."""
    from mdreg.commands.entry import run_cli
    from mdreg.commands.launch import main

    root = tmp_path_factory.mktemp("chain")
    args = ["recipes/quickstart.py", *TINY, f"train.output_root={root}", "train.run_name=tiny",
            "--cluster", "slurm", *SMALL_JOB]
    code = run_cli(main, [*args, "--wait"])
    return code, root / "quickstart" / "tiny", args


def test_both_stages_complete(submitted):
    code, run_dir, _ = submitted
    assert code == 0
    jobs = recorded_jobs(run_dir)
    assert [j["stages"] for j in jobs] == [["pretrain"], ["finetune"]]
    assert jobs[1]["dependency"] == f"afterok:{jobs[0]['job_id']}"
    for job in jobs:
        assert sacct(job["job_id"])[-1]["State"] == "COMPLETED"
    for stage in ("pretrain", "finetune"):
        state = torch.load(run_dir / stage / "checkpoints" / "step_00000002.pt", weights_only=True)
        assert state["step"] == 2 and state["stage"] == stage
    assert (run_dir / "config.yaml").is_file() and (run_dir / "finetune" / "config.yaml").is_file()


def test_second_stage_starts_after_the_first_ends(submitted):
    _, run_dir, _ = submitted
    first, second = (sacct(j["job_id"])[-1] for j in recorded_jobs(run_dir))
    assert second["Start"] >= first["End"], (first, second)  # ISO timestamps compare as strings


def test_status_shows_states_and_log_tail(submitted, launch):
    _, run_dir, _ = submitted
    code, out = launch("--status", run_dir)
    assert code == 0
    jobs = recorded_jobs(run_dir)
    for job in jobs:
        assert re.search(rf"{job['job_id']}\s+{job['stages'][0]}\s+COMPLETED", out)
    assert "[finetune]" in out and "2/2" in out  # the log's tail, the steps done
    assert (run_dir / "slurm" / f"pretrain.{jobs[0]['job_id']}.out").resolve().is_file()


def test_dry_run_prints_the_scripts_that_were_submitted(submitted, launch):
    """The dry run renders with submitit's own code: equal to what it wrote for the real jobs."""
    _, run_dir, args = submitted
    code, out = launch(*args, "--dry-run")
    assert code == 0 and "nothing was submitted" in out
    jobs, scripts = recorded_jobs(run_dir), dry_run_scripts(out)
    assert len(scripts) == len(jobs) == 2
    for job, script in zip(jobs, scripts):
        written, expected = submitted_script(run_dir / "slurm" / "logs", job, script)  # a single run keeps its own
        assert written == expected


def test_relaunching_a_complete_run_submits_nothing(submitted, launch):
    _, run_dir, args = submitted
    before = (run_dir / "slurm" / "jobs.json").read_text()
    code, out = launch(*args)
    assert code == 0 and "# nothing to submit" in out and str(run_dir) in out
    assert (run_dir / "slurm" / "jobs.json").read_text() == before  # no new job, no new record


def test_a_second_submission_is_refused_while_the_first_is_queued(submitted, launch):
    _, run_dir, args = submitted
    args = [a if a != "train.run_name=tiny" else "train.run_name=again" for a in args]
    again = run_dir.parent / "again"
    code, out = launch(*args, "--stages", "pretrain")  # returns at once: the job is queued
    assert code == 0
    jobs = recorded_jobs(again)
    try:
        code, out = launch(*args)  # the same run again while that job is queued/running
        assert code == 2 and "already has Slurm jobs queued or running" in out
        assert recorded_jobs(again) == jobs  # nothing new was submitted
    finally:
        subprocess.run(["scancel", *(j["job_id"] for j in jobs)], check=True)
    wait_ended([j["job_id"] for j in jobs])
