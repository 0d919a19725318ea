"""A job array in which one element fails inside its job (a dataset too small for one batch,
which only the trainer finds out): the other elements finish, ``--status`` over the recipe
folder names the failed element and its error line, and relaunching the same sweep
resubmits that element alone (the complete ones get no job and keep their records)."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.slurm.slurm_helpers import SMALL_JOB, TINY, recorded_jobs, sacct, wait_ended

pytestmark = pytest.mark.slurm
ERROR = "ConfigError: data.dataset has 16 samples, fewer than one global batch of stages.pretrain.batch_size=64"


def submissions(run) -> list[dict]:
    return json.loads((run / "slurm" / "jobs.json").read_text())["submissions"]


def test_one_failed_element_is_named_and_alone_resubmitted(tmp_path, launch):
    args = ["recipes/quickstart.py", *TINY, f"train.output_root={tmp_path}", "train.run_name=sw",
            "data.dataset.num_images=64,16,128", "--stages", "pretrain", "--cluster", "slurm", *SMALL_JOB,
            "--array-parallelism", "2"]
    code, out = launch(*args, "--wait")
    assert code == 1
    folder = tmp_path / "quickstart"
    good = [folder / f"sw+data.dataset.num_images-{n}" for n in (64, 128)]
    bad = folder / "sw+data.dataset.num_images-16"
    (bad_job,) = recorded_jobs(bad)
    assert sacct(bad_job["job_id"])[-1]["State"] == "FAILED"
    for run in good:
        assert sacct(recorded_jobs(run)[0]["job_id"])[-1]["State"] == "COMPLETED"
        assert (run / "pretrain" / "checkpoints" / "step_00000002.pt").is_file()

    code, out = launch("--status", folder)
    assert code == 1
    summary = out[out.index("== 3 runs, 3 jobs: 2 completed, 1 failed"):].splitlines()
    assert summary[1] == "failed (1):" and len(summary) == 3, out
    assert summary[2].startswith(f"  {bad.name}: pretrain {bad_job['job_id']} FAILED: mdreg.errors.{ERROR} "), out
    print("\n".join(summary))

    before = {run: submissions(run) for run in good}
    code, out = launch(*args)  # the same sweep again
    assert code == 0
    assert "# not resubmitted, nothing left to run: 2 run(s) (every stage asked for is complete)" in out
    assert all(submissions(run) == before[run] for run in good)  # no job, no new record
    runs = submissions(bad)
    assert len(runs) == 2 and [j["stages"] for j in runs[-1]["jobs"]] == [["pretrain"]]
    new_id = runs[-1]["jobs"][0]["job_id"]
    assert "_" not in new_id and new_id != bad_job["job_id"].split("_")[0]  # one job, not an array
    subprocess.run(["scancel", new_id], check=True)  # it would fail again: it still has 16 images
    wait_ended([new_id])
