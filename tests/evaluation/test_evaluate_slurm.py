"""Evaluation as real Slurm jobs: ``tools/launch.py --evaluate --cluster slurm`` on a 2-run sweep (an
evaluation array ``aftercorr`` on the training array), then ``tools/evaluate.py --cluster slurm``
for the milestone curve of one run (a single job: its training has completed)."""
from __future__ import annotations

import json

import pytest

from mdreg.commands.entry import run_cli
from mdreg.commands.evaluate import main as evaluate_main
from mdreg.runs.records import SOURCE
from mdreg.commands.launch import main as launch_main
from tests.conftest import tiny_recipe
from tests.slurm.conftest import local_slurm  # noqa: F401  (starts the local cluster for this module)
from tests.slurm.slurm_helpers import SMALL_JOB, recorded_jobs, sacct, wait_ended

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SHAPE = '''
evaluation = dict(metric="shape", stage="main", sampler=L("sampler:ddim")(steps=2), num_samples=8)
'''


def test_evaluation_array_after_the_training_array_then_a_milestone_curve(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))  # the jobs inherit it (sbatch exports the env)
    recipe = tiny_recipe(tmp_path, steps=4, ckpt_every=2, sampler="L('sampler:ddim')(steps=2)")
    recipe.write_text(recipe.read_text().replace("milestone_every=None", "milestone_every=2") + SHAPE)
    code = run_cli(launch_main, [str(recipe), "train.seed=0,1", "--cluster", "slurm", "--evaluate", *SMALL_JOB,
                                 "--wait"])
    out = capsys.readouterr().out
    assert code == 0, out
    runs = sorted((tmp_path / "runs" / "tiny").glob("seed-*"))
    assert [r.name for r in runs] == ["seed-0", "seed-1"]
    for i, run in enumerate(runs):
        train, evaluate = recorded_jobs(run)
        assert train["stages"] == ["main"] and evaluate["stages"] == ["evaluate-main"]
        assert evaluate["dependency"] == f"aftercorr:{train['job_id'].split('_')[0]}"
        assert evaluate["job_id"].endswith(f"_{i}") and sacct(evaluate["job_id"])[-1]["State"] == "COMPLETED"
        assert sacct(evaluate["job_id"])[-1]["Start"] >= sacct(train["job_id"])[-1]["End"]
        (record,) = [json.loads(line) for line in (run / "main" / "metrics.jsonl").read_text().splitlines()
                     if SOURCE in line]
        assert record["checkpoint_step"] == 4 and record["scores"]["shape_fid"] > 0
        slurm = record["provenance"]["slurm"]
        assert slurm["array_job_id"] == evaluate["job_id"].split("_")[0] and slurm["array_task_id"] == str(i)
        start = next(json.loads(line) for line in (run / "main" / "metrics.jsonl").read_text().splitlines()
                     if '"event": "start"' in line)
        assert start["provenance"]["slurm"]["array_task_id"] == str(i)  # the training job's own ids
    assert "evaluate-main: array of 2" in out
    # the milestone curve of one run, afterwards: one job, nothing to wait for
    assert run_cli(evaluate_main, [str(runs[0]), "--cluster", "slurm", "--checkpoint", "all-milestones",
                                   *SMALL_JOB]) == 0
    jobs = recorded_jobs(runs[0])
    assert len(jobs) == 3 and jobs[2]["dependency"] is None
    assert wait_ended([jobs[2]["job_id"]])[jobs[2]["job_id"]]["State"] == "COMPLETED"
    steps = [json.loads(line)["checkpoint_step"] for line in (runs[0] / "main" / "metrics.jsonl").read_text()
             .splitlines() if SOURCE in line]
    assert steps == [4, 2]  # step 4 was recorded once (by the first job); the curve added step 2
